/**
 * Message statuses and their monotonic transitions (one-api.md §4.1–4.2), and the payload of the
 * `message.*` events (webhooks.md §5.1). Pure functions: the service applies them in its
 * transactions.
 */
export type MessageStatus = 'processing' | 'retrying' | 'sent' | 'delivered' | 'read' | 'expired' | 'failed' | 'filtered';
export const FINAL: ReadonlySet<string> = new Set(['read', 'expired', 'failed', 'filtered']);

const RANK: Record<string, number> = { processing: 0, retrying: 0, sent: 1, delivered: 2, read: 3 };
export const rank = (s: string): number => RANK[s] ?? 4;

/** Whether a report of `next` applies to a message currently `current` (§4.2). */
export function canTransition(current: string, next: string): boolean {
  if (FINAL.has(current)) return false;
  const r = rank(current);
  if (next === 'failed' || next === 'expired') return r <= 1;
  if (next === 'filtered') return r === 0;
  return rank(next) > r;
}

/** One channel evaluation or send in `statusDetails.attempts`. */
export interface Attempt {
  channel: string;
  outcome: 'skipped' | 'rejected' | 'accepted' | 'retrying' | 'failed' | 'TimedOut';
  reason?: string;
  at: string;
  providerMessageId?: string;
  /** Latest channel status reported for this attempt (receipts after acceptance). */
  status?: string;
  statusOn?: string;
}

export interface StatusDetails {
  channelId?: string;
  attempts?: Attempt[];
  failureReason?: string;
  errorCode?: string;
  nextAttemptOn?: string;
  channelStatus?: Record<string, { status: string; details?: unknown; updatedOn: string }>;
  [extra: string]: unknown;
}

/** Internal Branch progress kept with the message (never shown). */
export interface DispatchState {
  rules: string[];
  next: number;
  /** Index in `rules` of the channel that accepted the message, while it carries it. */
  current?: number;
  retries: number;
  fallbackOnFailure?: boolean;
  fallbackAfter?: number;
  successStatus?: string;
  /** An attempt reached `successStatus`: no other channel is ever tried. */
  succeeded?: boolean;
  cancelled?: boolean;
  /** `channelData.<channel>` of the events, kept from the accepting send (webhooks.md §5.1). */
  channelData?: Record<string, Record<string, unknown>>;
}

/** Keys of an accepted send's outcome details that events carry as `channelData.<channel>`. */
const CHANNEL_DATA_KEYS: Record<string, readonly string[]> = {
  sms: ['phoneNumberCountryCode', 'segmentCount', 'encoding', 'from', 'charactersReplaced'],
  mms: ['phoneNumberCountryCode', 'from', 'subject', 'mediaCount'],
  email: ['from', 'subject'],
  appMessaging: ['conversationEventId'],
  rcs: ['phoneNumber', 'phoneNumberCountryCode', 'agentId'],
};

/** The `channelData.<channel>` an accepted send's outcome details provide (undefined when none). */
export function channelDataOf(channel: string, details: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  const keys = CHANNEL_DATA_KEYS[channel];
  if (!keys || !details) return undefined;
  const out: Record<string, unknown> = {};
  for (const k of keys) if (details[k] !== undefined && details[k] !== null && details[k] !== '') out[k] = details[k];
  return Object.keys(out).length ? out : undefined;
}

/** Reasons that count as opt-in filtering (all-filtered → `filtered`). */
export const OPT_REASONS: ReadonlySet<string> = new Set(['OptedOut', 'NotOptedIn']);

/** `additionalInfo` and `channelData` per channel (webhooks.md §5.1). */
function channelExtras(channel: string, to: Record<string, unknown>, messageId: string, info: Record<string, unknown>, success: boolean) {
  switch (channel) {
    case 'sms':
      return { additionalInfo: { to: info.to ?? to.phoneNumber, successful: success, clientRef: info.clientRef ?? messageId }, channelData: { ...(info.segmentCount !== undefined ? { segmentCount: info.segmentCount } : {}) } };
    case 'email':
    case 'whatsApp':
    case 'mms':
      return { additionalInfo: { to: info.to ?? (channel === 'email' ? to.email : to.phoneNumber), successful: success, providerMessageId: info.providerMessageId }, channelData: {} };
    case 'fbMessenger':
      return { additionalInfo: { fbMessengerId: to.fbMessengerId, messageId: info.providerMessageId }, channelData: {} };
    case 'rcs':
      // channelData.rcs (phoneNumber in E.164 form, its country, the agent) is kept from the accepting send.
      return { additionalInfo: { to: to.phoneNumber, successful: success }, channelData: {} };
    case 'twitterDm':
      return { additionalInfo: { twitterId: to.twitterId, successful: success }, channelData: {} };
    case 'appMessaging':
      return { additionalInfo: { profileId: to.profileId, conversationId: info.conversationId }, channelData: {} };
    case 'nativePush':
      return { additionalInfo: { devices: info.devices, accepted: info.accepted }, channelData: {} };
    default:
      return { additionalInfo: { httpStatus: info.httpStatus, successful: success }, channelData: {} };
  }
}

export interface EventInput {
  messageId: string;
  status: string;
  channel: string | null;
  to: Record<string, unknown>;
  conversationId?: string;
  metadata?: unknown;
  updatedOn: string;
  /** When the channel reported the status; `updatedOn` when absent. */
  statusOn?: string;
  failureReason?: string;
  errorCode?: string;
  channelDetails?: Record<string, unknown>;
  /** The accepting send's details: a receipt's `additionalInfo` keeps what they said. */
  sentDetails?: Record<string, unknown>;
  /** `channelData` kept from the accepting send (`DispatchState.channelData[channel]`). */
  channelData?: Record<string, unknown>;
}

/** Payload of `message.<status>` (`filtered` is published as `message.failed`). */
export function eventPayload(e: EventInput): Record<string, unknown> {
  const success = !['failed', 'expired', 'filtered'].includes(e.status);
  const details: Record<string, unknown> = { channel: e.channel };
  let channelData: Record<string, unknown> = {};
  if (e.channel) {
    const extras = channelExtras(e.channel, e.to, e.messageId, { ...e.sentDetails, ...e.channelDetails }, success);
    details.additionalInfo = extras.additionalInfo;
    details.channelStatus = { [e.channel]: { status: e.status, details: e.channelDetails ?? {}, updatedOn: e.statusOn ?? e.updatedOn } };
    channelData = { [e.channel]: { ...(e.channelData ?? {}), ...extras.channelData } };
  }
  if (e.failureReason !== undefined) details.failureReason = e.failureReason;
  if (e.errorCode !== undefined) details.errorCode = e.errorCode;
  return {
    id: e.messageId,
    status: e.status,
    ...(e.conversationId ? { conversationId: e.conversationId } : {}),
    details,
    channelData,
    updatedOn: e.updatedOn,
    ...(e.metadata !== undefined ? { metadata: e.metadata } : {}),
  };
}

export const eventName = (status: string): string => (status === 'filtered' ? 'message.failed' : `message.${status}`);

/** History status enum (one-api.md §3.9). */
export function historyStatus(status: string): string {
  if (status === 'retrying') return 'processing';
  if (status === 'expired' || status === 'filtered') return 'failed';
  if (status === 'received') return 'delivered';
  return status;
}
