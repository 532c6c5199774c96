/**
 * Websocket frames (app-messaging.md §7.4) and the bus messages that carry them between server
 * processes. Writers publish a `FrameDelivery` after commit; every process's gateway hands the
 * frame to its own sockets of the listed profiles.
 */

/** Bus channel for frames addressed to profiles. */
export const FRAMES_CHANNEL = 'realtime.frames';
/** Bus channel announcing ended sessions: their sockets close with 4401. */
export const SESSION_ENDED_CHANNEL = 'realtime.sessionEnded';

export interface Frame {
  eventId: string;
  apiSpaceId: string;
  accountId: number;
  name: string;
  conversationId?: string;
  conversationEventId?: number;
  payload: unknown;
  context: { createdBy: string; createdOn: string };
  revision?: number;
  etag?: string;
  eTag?: string;
  profileId?: string;
  publishedOn: string;
  [extra: string]: unknown;
}

export interface FrameDelivery {
  /** API space (normalised id). */
  s: string;
  /** Recipient profile ids. */
  to: string[];
  /** A profile whose sockets are skipped (the typing profile). */
  ex?: string;
  f: Frame;
}

export interface SessionEnded {
  s: string;
  sessionId: string;
}

/** `context.createdBy` in frames: the plain profile id for session actors (SDK). */
export function frameActor(actor: string): string {
  return actor.startsWith('session:') ? actor.slice('session:'.length) : actor;
}
