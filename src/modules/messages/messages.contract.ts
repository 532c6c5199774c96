/**
 * What other modules call on the One API (`services.messages`), implemented by the messages
 * module: Verify sends its SMS through it, adapters report receipts and inbound messages through
 * it, App Messaging reports conversation-message statuses for `appMessaging` sends.
 */
import type { Uow } from '../../storage/uow.js';
import type { Actor } from '../../auth/actor.js';
import type { InboundReport, ReadUpTo, ReceiptReport } from '../../channels/adapter.js';

export interface SendResult {
  messageId: string;
  /** The message's status right after acceptance (normally `processing`). */
  status: string;
}

export interface MessagesApi {
  /**
   * Validates and accepts one message request body (one-api.md §2) exactly like
   * `POST /messages`, as `actor`. Throws the same 400 `ValidationFailed` errors.
   */
  send(apiSpaceId: string, actor: Actor, request: Record<string, unknown>): Promise<SendResult>;
  /** Applies a status report (like `POST /messages/{id}/statuses/{status}`); unknown ids are ignored. */
  applyReceipt(apiSpaceId: string, channelId: string, report: ReceiptReport): Promise<void>;
  /** A read watermark (`ReadUpTo`): every message the channel took for that recipient up to then becomes `read`. */
  applyReadUpTo(apiSpaceId: string, channelId: string, read: ReadUpTo): Promise<void>;
  /**
   * Ingests an inbound message (like `POST /messages/inbounds`, one-api.md §5); given `uow`, in
   * that transaction, so that it commits with what it came from.
   */
  ingestInbound(apiSpaceId: string, report: InboundReport, uow?: Uow): Promise<{ inboundMessageId: string }>;
  /** Replaces the stored body of a message with a redaction marker (Verify hides its codes). */
  redactBody(apiSpaceId: string, messageId: string): Promise<void>;
}
