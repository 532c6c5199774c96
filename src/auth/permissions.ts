/** Permission vocabulary (conventions.md §3.4) and templates (spaces-and-billing.md §6.4). */

export const CHANNEL_SHORT_NAMES: Readonly<Record<string, string>> = {
  sms: 'sms',
  mms: 'mms',
  email: 'email',
  nativePush: 'push',
  whatsApp: 'whatsapp',
  fbMessenger: 'fbmsg',
  twitterDm: 'twitter',
  appMessaging: 'appmsg',
  rcs: 'rcs',
};

const CHANNEL_PERMS = ['any', ...new Set(Object.values(CHANNEL_SHORT_NAMES)), 'custom'].flatMap((c) => [`msg:${c}:s`, `msg:${c}:i`]);

export const PERMISSIONS: readonly string[] = [
  ...CHANNEL_PERMS,
  'msg:r', 'msg:w', 'msg:branch',
  'tmpl:r', 'tmpl:w', 'tmpl:d',
  'prof:ra', 'prof:wa', 'prof:da',
  'aud:r', 'aud:w', 'aud:d',
  'sess:ra', 'sess:wa', 'sess:da',
  'conv:ra', 'conv:wa', 'conv:da',
  'chat:r', 'chat:w', 'chat:d',
  'chatcfg:r', 'chatcfg:w',
  'presence:r', 'presence:w',
  'webhook:r', 'webhook:w', 'webhook:d',
  'rules:r', 'rules:w', 'rules:d',
  'content:w', 'content:d',
  'chan:r', 'chan:w',
  'pnv:r', 'pnv:w',
  'analytics:r',
  'fb:state:wa',
  'apis:ro',
];

const KNOWN = new Set(PERMISSIONS);
export const isKnownPermission = (p: string): boolean => KNOWN.has(p);

export interface PermissionTemplate {
  id: string;
  name: string;
  recommended?: boolean;
  permissions: string[];
}

export const PERMISSION_TEMPLATES: readonly PermissionTemplate[] = [
  { id: 'oneapi-all-branch', name: 'One API Access – All Channels + Branch', recommended: true, permissions: ['msg:any:s', 'msg:r', 'msg:branch', 'tmpl:r', 'content:w', 'chan:r'] },
  { id: 'oneapi-all', name: 'One API Access – All Channels', permissions: ['msg:any:s', 'msg:r', 'tmpl:r', 'content:w', 'chan:r'] },
  { id: 'profiles-manage', name: 'Manage profiles and data', permissions: ['prof:ra', 'prof:wa', 'prof:da', 'aud:r', 'aud:w', 'aud:d'] },
  { id: 'facebook-optin', name: 'Create Facebook opt-in data', permissions: ['fb:state:wa'] },
  { id: 'appmessaging-manage', name: 'Manage App Messaging conversations', permissions: ['conv:ra', 'conv:wa', 'conv:da', 'sess:ra', 'sess:wa', 'sess:da', 'content:w', 'prof:ra'] },
];

/**
 * Whether a granted set satisfies a required permission: exact, or `msg:any:s`/`msg:any:i` for
 * any channel-specific send/inbound permission.
 */
export function grants(granted: ReadonlySet<string>, required: string): boolean {
  if (granted.has(required)) return true;
  const m = /^msg:([a-z]+):([si])$/.exec(required);
  return !!m && granted.has(`msg:any:${m[2]}`);
}

/** Permissions an agent user holds implicitly (conventions.md §3.1). */
export const AGENT_PERMISSIONS: ReadonlySet<string> = new Set([
  'chat:r', 'chat:w', 'chatcfg:r', 'presence:r', 'presence:w', 'conv:ra', 'prof:ra', 'prof:wa', 'msg:r', 'content:w',
]);
