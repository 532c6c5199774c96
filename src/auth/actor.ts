/** Who is calling, derived from the credential (conventions.md §3). */
export interface Actor {
  kind: 'admin' | 'user' | 'access' | 'session';
  accountId: number;
  /** Actor string for audit fields and events: `access:<jti>`, `session:<profileId>`, `interactive:<user>`. */
  actor: string;
  role?: 'admin' | 'agent';
  username?: string;
  /** For access and session tokens: the space the token is bound to (normalised). */
  apiSpaceId?: string;
  /** The space id exactly as the token carries it (session tokens keep the app's form). */
  apiSpaceIdRaw?: string;
  profileId?: string;
  permissions?: ReadonlySet<string>;
  tokenId?: string;
  sessionId?: string;
}

export const SYSTEM_ACTOR = 'system';
