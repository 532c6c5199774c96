/**
 * The channel registry other modules use (`services.channels`), implemented by the channels
 * module: provider registration, adapters built from each space's channel configuration and
 * cached by configuration version, provider callbacks, tracked links.
 */
import type { Static } from '@sinclair/typebox';
import type { ChannelLimits as ChannelLimitsSchema } from './channels.schemas.js';
import type { ChannelAdapter, ChannelProvider, InboundReport, ReadUpTo, ReceiptReport } from '../../channels/adapter.js';

/** A channel's dispatch limits, as its schema (`channels.schemas.ts`) defines them. */
export type ChannelLimits = Static<typeof ChannelLimitsSchema>;

export interface ChannelConfigView {
  channelId: string;
  enabled: boolean;
  provider: string;
  /** Secrets masked as `********`. */
  settings: Record<string, unknown>;
  /** Dispatch limits (pacing and concurrency), absent when none are set. */
  limits?: ChannelLimits;
  /** Custom channels (channels.md §11) carry their request definition here too. */
  custom: boolean;
  revision: number;
}

/** Where adapters' receipts and inbound messages go (set by the messages module). */
export interface MessageSink {
  receipt(apiSpaceId: string, channelId: string, report: ReceiptReport): Promise<void>;
  inbound(apiSpaceId: string, report: InboundReport): Promise<void>;
  readUpTo(apiSpaceId: string, channelId: string, read: ReadUpTo): Promise<void>;
}

export interface ChannelRegistry {
  registerProvider(provider: ChannelProvider): void;
  /**
   * The adapter of an enabled, configured channel of the space, or a reason why there is none
   * (`unconfigured`, `disabled`) so Branch can fall through with a clear reason.
   */
  adapter(apiSpaceId: string, channelId: string): Promise<{ adapter: ChannelAdapter; config: ChannelConfigView } | { missing: 'unconfigured' | 'disabled' }>;
  /** The configuration (secrets masked) or undefined. */
  config(apiSpaceId: string, channelId: string): Promise<ChannelConfigView | undefined>;
  /**
   * Enabled configurations of a provider in every API space, optionally of one channel (providers
   * whose adapters must connect without a send, such as SMPP binds at start).
   */
  listByProvider(provider: string, channelId?: string): Promise<Array<{ apiSpaceId: string; channelId: string }>>;
  /**
   * Rewrites a URL into `{PUBLIC_BASE_URL}/t/{token}` bound to the message (channels.md §1.5).
   * `metadata` (the message's) is carried in the `interaction.click` event. Non-http(s) URLs are
   * returned unchanged.
   */
  trackLink(apiSpaceId: string, messageId: string, channelId: string, url: string, metadata?: unknown): Promise<string>;
  setSink(sink: MessageSink): void;
}
