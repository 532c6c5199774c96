/**
 * Channel adapter contract (channels.md §1.2, ARCHITECTURE.md "Channel adapters").
 *
 * A provider factory builds one adapter per (apiSpaceId, channelId, configVersion) from the
 * space's channel configuration (secrets already decrypted). Long-lived connections (an SMPP bind,
 * an SMTP pool, an HTTP/2 session) belong to the adapter instance and are released by `close()`.
 * Adapters never throw for provider errors: they classify them into a `SendOutcome`.
 */

/**
 * Outcome of one send attempt; the dispatcher decides retry / fallback from `kind` alone.
 * `skipped`: the adapter found, before sending anything, that the channel cannot reach the
 * recipient (an RCS capability check); recorded like a channel without an address (`code`, e.g.
 * `NoAddress`), and Branch goes on to the next channel.
 */
export type SendOutcome =
  | {
    kind: 'accepted'; providerMessageId?: string; acceptedAt?: number; details?: Record<string, unknown>;
    /**
     * Recipient identifiers the provider resolved for this send (X's user id for a screen name):
     * stored on the profile the message was addressed through, which then needs no look-up.
     */
    learned?: Record<string, string>;
  }
  | { kind: 'transient'; reason: string; retryAfterMs?: number; code?: string }
  | { kind: 'rejected'; reason: string; code?: string }
  | { kind: 'skipped'; reason: string; code: string };

/** Everything an adapter needs to send one message on its channel. */
export interface SendInput {
  apiSpaceId: string;
  messageId: string;
  channelId: string;
  /** The resolved address for this channel (phone number digits, e-mail, profile id, …). */
  to: Record<string, unknown>;
  /**
   * Sender selection from the request (`from` options), if any. For `appMessaging`: the sender
   * profile `{profileId, name?, avatarUrl?}` (`channelOptions.appMessaging.from`, default the
   * sending token's profileId).
   */
  from?: Record<string, unknown>;
  /** The credential that sent the message (`access:<id>`…), for channels that record an author. */
  actor?: string;
  /** `overrides[channelId]` from the request (`appMessaging`: `{conversation}`, one-api.md §2.4.6). */
  overrides?: Record<string, unknown>;
  /** Rendered content after merge fields and overrides for this channel. */
  title?: string;
  body?: string;
  htmlBody?: string;
  messageParts?: Array<{ type?: string; name?: string; url?: string; data?: string; size?: number }>;
  /** `customBody[channelId]` when the request supplied one (sent as the provider payload). */
  customBody?: unknown;
  /** `channelOptions[channelId]`. */
  options?: Record<string, unknown>;
  /** Epoch ms; adapters that support it map it to their validity/TTL. */
  expiresOn?: number;
  metadata?: unknown;
  conversationId?: string;
  /** The profile document the message was addressed through, when there is one. */
  profile?: Record<string, unknown>;
  /** Aborted when the job's lease is lost or the worker stops. */
  signal?: AbortSignal;
}

/** A delivery report produced by a provider callback or a protocol PDU. */
export interface ReceiptReport {
  /** Our message id when the provider echoes it; otherwise look up by `providerMessageId`. */
  messageId?: string;
  providerMessageId?: string;
  status: 'sent' | 'delivered' | 'read' | 'failed' | 'expired';
  details?: Record<string, unknown>;
  /** Epoch ms of the provider's report. */
  at?: number;
}

/** An inbound message as an adapter saw it; processed like `POST …/messages/inbounds`. */
export interface InboundReport {
  channelId: string;
  from: Record<string, unknown>;
  to?: Record<string, unknown>;
  body?: string;
  title?: string;
  messageParts?: Array<Record<string, unknown>>;
  providerMessageId?: string;
  /** Our outbound message id this replies to, when the channel can tell (e-mail In-Reply-To). */
  inReplyToMessageId?: string;
  /** The conversation the message was posted in (an app user's reply in an a2p conversation). */
  conversationId?: string;
  sentOn?: number;
  raw?: unknown;
}

/** Where a poll for inbound messages starts (`ChannelAdapter.poll`). */
export interface PollFrom {
  /** The `cursor` the previous poll returned (stored durably); undefined on the first poll. */
  cursor?: Record<string, unknown>;
  /** Epoch ms when polling was switched on: without a cursor, older messages are not taken. */
  since: number;
}

/** What one poll found; its inbound messages and its cursor are stored in one transaction. */
export interface PollResult {
  /** New inbound messages, oldest first. */
  inbounds: InboundReport[];
  /** Where the next poll starts; undefined keeps the stored one (a failed poll). */
  cursor?: Record<string, unknown>;
  /** Not to poll again before this long (a rate limit's reset), if longer than the interval. */
  retryAfterMs?: number;
}

/** What a callback request looked like (channels.md §1.4); the adapter verifies it itself. */
export interface CallbackRequest {
  method: 'GET' | 'POST';
  headers: Record<string, string | string[] | undefined>;
  query: Record<string, string | string[]>;
  /** The exact bytes received (signatures are computed over them). */
  rawBody: Buffer;
  contentType?: string;
}

/**
 * Everything sent on the channel to one recipient up to a moment was read (Messenger reports reads
 * as a watermark, not per message): the messages to the profile holding `address` that are `sent`
 * or `delivered` and were accepted by the channel at or before `before` become `read`.
 */
export interface ReadUpTo {
  /** The recipient as the channel knows it, e.g. `{fbMessengerId}`. */
  address: Record<string, string>;
  /** Epoch ms. */
  before: number;
}

/** A Messenger user opted in through a plugin or link carrying a `/channels/facebook/state` string (channels.md §7). */
export interface OptinReport {
  fbMessengerId: string;
  /** The opt-in string as Facebook echoed it (`optin.ref`, `referral.ref`, `postback.referral.ref`). */
  ref: string;
  pageId: string;
  /** The Messenger event as received. */
  raw: unknown;
}

export interface CallbackResult {
  /** HTTP answer to the provider (default 200 with an empty body). */
  status?: number;
  body?: string | Buffer;
  contentType?: string;
  receipts?: ReceiptReport[];
  inbounds?: InboundReport[];
  reads?: ReadUpTo[];
  optins?: OptinReport[];
}

/** Ways an adapter reports asynchronously (long-lived connections such as an SMPP receiver). */
export interface AdapterSink {
  receipt(report: ReceiptReport): Promise<void>;
  inbound(report: InboundReport): Promise<void>;
}

/** An inbound message the customer marked read (one-api.md §3.8), as its channel knows it. */
export interface ReadInbound {
  providerMessageId: string;
  /** The sender, as the inbound message recorded it (`{phoneNumber}`, `{fbMessengerId}`…). */
  from: Record<string, unknown>;
}

/** An inbound part's media as the provider served it, or why it could not be had (`ChannelAdapter.fetchMedia`). */
export type MediaFetch = { kind: 'fetched'; bytes: Buffer; type?: string } | (SendOutcome & { kind: 'transient' | 'rejected' });

export interface ChannelAdapter {
  send(input: SendInput): Promise<SendOutcome>;
  /**
   * The provider takes media by URL only: parts with inline `data` are stored with the Content
   * API and sent by its download URL (`modules/messages/hosted-parts.ts`).
   */
  readonly mediaByUrl?: boolean;
  /**
   * The bytes of an inbound message part that only the provider can serve (a WhatsApp media id, a
   * Messenger attachment's expiring CDN URL); undefined when the part needs nothing fetched. The
   * registry stores them with the Content API, and the part gets that file's URL.
   */
  fetchMedia?(part: Record<string, unknown>, options: { maxBytes: number; signal?: AbortSignal }): Promise<MediaFetch | undefined>;
  /**
   * Tells the provider an inbound message was read (WhatsApp's blue ticks, Messenger's "seen").
   * A `transient` answer is tried again later; anything else ends it.
   */
  markRead?(inbound: ReadInbound, signal?: AbortSignal): Promise<SendOutcome>;
  /** Provider callbacks (`/channels/{channelId}/callback`); 401 for a bad signature. */
  handleCallback?(request: CallbackRequest): Promise<CallbackResult>;
  /**
   * Fetches new inbound messages from the provider, for configurations without webhooks (X
   * `GET /2/dm_events`); the channel registry calls it every `pollIntervalMs` through a durable
   * job. Provider errors come back as a result without a cursor, never as a throw.
   */
  poll?(from: PollFrom, signal?: AbortSignal): Promise<PollResult>;
  pollIntervalMs?: number;
  close?(): Promise<void>;
}

export interface AdapterContext {
  apiSpaceId: string;
  channelId: string;
  /** Decrypted provider settings from the channel configuration. */
  settings: Record<string, unknown>;
  /** For asynchronous receipts and inbound messages. */
  sink: AdapterSink;
  /** Outbound HTTP guard: rejects loopback/private targets unless ALLOW_PRIVATE_CHANNEL_TARGETS. */
  allowPrivateTargets: boolean;
  publicBaseUrl: string;
  /**
   * Rewrites a URL into a tracked link `{PUBLIC_BASE_URL}/t/{token}` (channels.md §1.5); `metadata`
   * (the message's, as sent) comes back in its `interaction.click` event.
   */
  trackLink?(url: string, messageId: string, metadata?: unknown): Promise<string>;
  /**
   * A file of the space's content store, when `url` is one of its content-API URLs: read from
   * disk instead of over HTTP (the public base URL may not even reach this server). Undefined when
   * `url` is not such a URL; null when it is, but the file is gone.
   */
  readContent?(url: string): Promise<{ bytes: Buffer; type: string } | null | undefined>;
  /** The size of such a file, without reading it; undefined when `url` is not one or the file is gone. */
  contentSize?(url: string): Promise<number | undefined>;
  log: import('pino').Logger;
}

/**
 * A provider for one channel: validates its settings (returns failures with paramName relative to
 * `settings`) and builds adapters. `secretSettings` names the write-only keys (masked `********`).
 */
export interface ChannelProvider {
  channel: string;
  provider: string;
  secretSettings: readonly string[];
  validateSettings(settings: Record<string, unknown>): Array<{ paramName: string; message: string }>;
  create(ctx: AdapterContext): ChannelAdapter | Promise<ChannelAdapter>;
  /** Whether a configuration with these (non-secret) settings takes inbound messages by polling (its adapter has `poll`). */
  polls?(settings: Record<string, unknown>): boolean;
}
