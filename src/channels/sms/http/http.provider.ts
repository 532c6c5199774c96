/**
 * Generic HTTP SMS gateway (sms.md §8.2): one templated request per message, the provider's id
 * read from the response by JSON pointer, receipts and inbound messages from the gateway's
 * callbacks (authenticated with the channel's `callbackSecret`). The gateway itself is shared with
 * MMS (`gateway.ts`); this file adds the SMS text, encoding and sender.
 */
import type { AdapterContext, ChannelAdapter, ChannelProvider, SendInput, SendOutcome } from '../../adapter.js';
import { memorySenderStore, prepareFor, smsRecipient, smsTextWithLinks, smsValidUntil, type SenderStore } from '../sms-common.js';
import { createGateway, GATEWAY_SECRETS, inboundAddresses, obj, pointer, str, validateGatewaySettings, type Failure } from './gateway.js';

const STATUSES = ['sent', 'delivered', 'read', 'failed', 'expired'] as const;

export function validateHttpSmsSettings(s: Record<string, unknown>): Failure[] {
  return validateGatewaySettings(s, STATUSES, ['fromPath', 'toPath', 'textPath']);
}

export function createHttpSmsAdapter(ctx: AdapterContext, deps: { senders?: SenderStore; now?: () => number } = {}): ChannelAdapter {
  const s = ctx.settings;
  const now = deps.now ?? Date.now;
  const inboundCfg = obj(s.inbound);
  const gateway = createGateway(ctx, {
    statuses: STATUSES,
    defaultTemplate: '{"to":"{{to}}","from":"{{from}}","text":"{{text}}","reference":"{{messageId}}"}',
    now,
    senders: deps.senders ?? memorySenderStore(),
    inbound(item) {
      const text = inboundCfg.textPath ? pointer(item, str(inboundCfg.textPath)) : undefined;
      const addresses = text === undefined ? undefined : inboundAddresses(item, inboundCfg);
      return addresses && { channelId: ctx.channelId, ...addresses, body: String(text), raw: item };
    },
  });

  return {
    async send(input: SendInput): Promise<SendOutcome> {
      const to = smsRecipient(input);
      if (!to || !/^\d{4,15}$/.test(to)) return { kind: 'rejected', reason: 'No valid phone number to send to', code: 'InvalidNumber' };
      const prepared = prepareFor(input, to, await smsTextWithLinks(input, ctx.trackLink));
      if (!prepared.ok) return { kind: 'rejected', reason: prepared.reason, code: prepared.code };
      const sent = await gateway.send(input, to, {
        to, text: prepared.sms.text, messageId: input.messageId, encoding: prepared.sms.encoding,
        validUntil: new Date(smsValidUntil(input, now())).toISOString(),
      });
      if (!sent.ok) return sent.outcome;
      return { kind: 'accepted', providerMessageId: sent.providerMessageId, acceptedAt: now(), details: { ...prepared.details, from: sent.from } };
    },

    handleCallback: (req) => gateway.handleCallback(req),
  };
}

export function httpSmsProvider(deps: { senders?: SenderStore } = {}): ChannelProvider {
  return {
    channel: 'sms',
    provider: 'http',
    secretSettings: GATEWAY_SECRETS,
    validateSettings: validateHttpSmsSettings,
    create: (ctx) => createHttpSmsAdapter(ctx, deps),
  };
}
