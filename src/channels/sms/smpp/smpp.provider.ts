import type { PDU } from 'smpp';
import type { AdapterContext, ChannelAdapter, ChannelProvider, SendInput, SendOutcome } from '../../adapter.js';
import { concatUdh, encodeGsm, encodeUcs2, type PreparedSms } from '../encoding.js';
import {
  aggregate, memoryPartStore, memorySenderStore, numberList, parseReceiptText, prepareFor, receiptStatus, selectSender, smsTextWithLinks,
  smsValidUntil, sourceAddress, smsRecipient, type PartStore, type PoolNumber, type SenderStore,
} from '../sms-common.js';
import { SmppClient, SmppUnavailable, type SmppClientOptions } from './smpp-client.js';
import { createReassembler } from './reassembly.js';

/** The channel settings: the connection options the client takes, plus sending rules. */
export interface SmppSettings extends Pick<SmppClientOptions,
  'host' | 'port' | 'tls' | 'systemId' | 'password' | 'systemType' | 'bindMode' | 'enquireLinkSeconds' | 'windowSize' | 'throughputPerSecond' | 'rebindMinMs' | 'rebindMaxMs'> {
  tlsRejectUnauthorized: boolean;
  concatenation: 'udh' | 'sar' | 'payload';
  gsmDataCoding: number;
  registeredDelivery: number;
  numbers: PoolNumber[];
  defaultFrom?: string;
  /** How long a submission waits for a bind before it is reported transient. */
  submitTimeoutMs: number;
}

/** Extra attempts for one throttled part of a multi-part message. */
const PART_RETRIES = 3;

export function smppSettings(raw: Record<string, unknown>): SmppSettings {
  const num = (k: string, d: number) => (typeof raw[k] === 'number' ? (raw[k] as number) : d);
  const str = (k: string, d = '') => (typeof raw[k] === 'string' ? (raw[k] as string) : d);
  return {
    host: str('host'),
    port: num('port', 2775),
    tls: raw.tls === true,
    tlsRejectUnauthorized: raw.tlsRejectUnauthorized !== false,
    systemId: str('systemId'),
    password: str('password'),
    systemType: str('systemType'),
    bindMode: raw.bindMode === 'transmitter+receiver' || raw.bindMode === 'separate' ? 'transmitter+receiver' : 'transceiver',
    enquireLinkSeconds: num('enquireLinkSeconds', 30),
    windowSize: num('windowSize', 10),
    throughputPerSecond: num('throughputPerSecond', 10),
    concatenation: raw.concatenation === 'sar' || raw.concatenation === 'payload' ? raw.concatenation : 'udh',
    gsmDataCoding: num('gsmDataCoding', 0),
    registeredDelivery: num('registeredDelivery', 1),
    numbers: numberList(raw.numbers),
    defaultFrom: typeof raw.defaultFrom === 'string' ? raw.defaultFrom : undefined,
    rebindMinMs: num('rebindMinMs', 1000),
    rebindMaxMs: num('rebindMaxMs', 60_000),
    submitTimeoutMs: num('submitTimeoutMs', 30_000),
  };
}

export function validateSmppSettings(raw: Record<string, unknown>): Array<{ paramName: string; message: string }> {
  const out: Array<{ paramName: string; message: string }> = [];
  const intIn = (k: string, min: number, max: number) => {
    if (raw[k] !== undefined && !(Number.isInteger(raw[k]) && (raw[k] as number) >= min && (raw[k] as number) <= max)) out.push({ paramName: k, message: `Must be an integer from ${min} to ${max}` });
  };
  if (typeof raw.host !== 'string' || !raw.host) out.push({ paramName: 'host', message: 'Required' });
  if (typeof raw.systemId !== 'string' || !raw.systemId || raw.systemId.length > 15) out.push({ paramName: 'systemId', message: 'Required, at most 15 characters' });
  if (raw.password !== undefined && (typeof raw.password !== 'string' || raw.password.length > 8)) out.push({ paramName: 'password', message: 'At most 8 characters (SMPP 3.4)' });
  intIn('port', 1, 65535);
  intIn('enquireLinkSeconds', 1, 3600);
  intIn('windowSize', 1, 1000);
  intIn('throughputPerSecond', 1, 100_000);
  intIn('gsmDataCoding', 0, 15);
  intIn('registeredDelivery', 0, 31);
  if (raw.bindMode !== undefined && !['transceiver', 'transmitter+receiver', 'separate'].includes(String(raw.bindMode))) out.push({ paramName: 'bindMode', message: 'transceiver or transmitter+receiver' });
  if (raw.concatenation !== undefined && !['udh', 'sar', 'payload'].includes(String(raw.concatenation))) out.push({ paramName: 'concatenation', message: 'udh, sar or payload' });
  if (raw.numbers !== undefined && !Array.isArray(raw.numbers)) out.push({ paramName: 'numbers', message: 'Must be an array' });
  return out;
}

/** SMPP time: absolute `YYMMDDhhmmss` + tenths + `00+` (UTC). */
function smppTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}${Math.floor(d.getUTCMilliseconds() / 100)}00+`;
}

/** submit_sm_resp command_status → outcome (sms.md §8.1, §6.3). */
function mapSubmitError(status: number): SendOutcome {
  switch (status) {
    case 0x58:
      return { kind: 'transient', reason: 'SMSC throttled the submission (ESME_RTHROTTLED)', code: 'Throttled', retryAfterMs: 1000 };
    case 0x14:
      return { kind: 'transient', reason: 'SMSC message queue full (ESME_RMSGQFUL)', code: 'ProviderError', retryAfterMs: 5000 };
    case 0x08:
    case 0x64:
      return { kind: 'transient', reason: `SMSC system error (0x${status.toString(16)})`, code: 'ProviderError' };
    case 0x0b:
    case 0x50:
    case 0x51:
      return { kind: 'rejected', reason: `Invalid destination address (0x${status.toString(16)})`, code: 'InvalidNumber' };
    case 0x0a:
    case 0x48:
    case 0x49:
      return { kind: 'rejected', reason: `Sender rejected (0x${status.toString(16)})`, code: 'SenderIdRejected' };
    case 0x45:
      return { kind: 'rejected', reason: 'SMSC submit failed (ESME_RSUBMITFAIL)', code: 'Rejected' };
    default:
      return { kind: 'rejected', reason: `SMSC rejected the message (command_status 0x${status.toString(16)})`, code: 'Rejected' };
  }
}

/** The submit_sm field sets of one message (one per part). */
export function buildSubmits(sms: PreparedSms, s: SmppSettings, base: Record<string, unknown>, ref: number): Array<Record<string, unknown>> {
  const dataCoding = sms.encoding === 'GSM7' ? s.gsmDataCoding : 8;
  // SMSCs configured for data_coding 1 (IA5) or 3 (Latin-1) take octets, not GSM septets.
  const octets = (t: string) => Buffer.from(t.replace(/[\u0100-\uffff]/g, '?'), 'latin1');
  const encode = (t: string) => (sms.encoding === 'UCS2' ? encodeUcs2(t) : s.gsmDataCoding === 1 || s.gsmDataCoding === 3 ? octets(t) : encodeGsm(t));
  const common = { ...base, data_coding: dataCoding };
  if (sms.segmentCount === 1) return [{ ...common, short_message: encode(sms.text) }];
  if (s.concatenation === 'payload') return [{ ...common, short_message: Buffer.alloc(0), message_payload: encode(sms.text) }];
  const total = sms.segments.length;
  return sms.segments.map((seg, i) =>
    s.concatenation === 'sar'
      ? { ...common, short_message: encode(seg), sar_msg_ref_num: ref & 0xffff, sar_total_segments: total, sar_segment_seqnum: i + 1 }
      : { ...common, esm_class: 0x40, short_message: Buffer.concat([concatUdh(ref, total, i + 1), encode(seg)]) },
  );
}

export interface SmppDeps {
  parts?: PartStore;
  senders?: SenderStore;
  now?: () => number;
}

/** Builds one adapter: its own binds to the configured SMSC, receipts and MO through `ctx.sink`. */
export function createSmppAdapter(ctx: AdapterContext, deps: SmppDeps = {}): ChannelAdapter & { client: SmppClient; close(): Promise<void> } {
  const s = smppSettings(ctx.settings);
  const parts = deps.parts ?? memoryPartStore();
  const senders = deps.senders ?? memorySenderStore();
  const now = deps.now ?? Date.now;
  let ref = Math.floor(Math.random() * 256);
  const reassembler = createReassembler((msg) => ctx.sink.inbound(msg));

  async function onDeliver(pdu: PDU): Promise<number> {
    const esm = Number(pdu.esm_class ?? 0);
    if ((esm & 0x3c) === 0x04 || (esm & 0x3c) === 0x08) {
      const text = String(pdu.short_message?.message ?? pdu.message_payload?.message ?? '');
      const parsed = parseReceiptText(text);
      const providerId = String(pdu.receipted_message_id ?? parsed.id ?? '');
      const mapped = receiptStatus(pdu.message_state !== undefined && !parsed.stat ? Number(pdu.message_state) : parsed.stat);
      if (!providerId) return 0;
      const settled = await parts.settle(ctx.apiSpaceId, providerId, mapped.state);
      const status = settled ? aggregate(settled.states) : mapped.status;
      if (!status) return 0;
      const errorCode = status === 'delivered' ? undefined : mapped.errorCode ?? (status === 'expired' ? 'Expired' : 'Undeliverable');
      await ctx.sink.receipt({
        messageId: settled?.messageId,
        providerMessageId: providerId,
        status,
        details: { ...(errorCode ? { errorCode } : {}), ...(parsed.err && parsed.err !== '000' ? { carrierErrorCode: parsed.err } : {}), stat: mapped.state },
        at: now(),
      });
      return 0;
    }
    await reassembler.add(pdu, now());
    return 0;
  }

  const client = new SmppClient({
    host: s.host, port: s.port, tls: s.tls, tlsRejectUnauthorized: s.tlsRejectUnauthorized, systemId: s.systemId, password: s.password, systemType: s.systemType, bindMode: s.bindMode,
    enquireLinkSeconds: s.enquireLinkSeconds, windowSize: s.windowSize, throughputPerSecond: s.throughputPerSecond,
    rebindMinMs: s.rebindMinMs, rebindMaxMs: s.rebindMaxMs, responseTimeoutMs: 30_000, onDeliver, log: ctx.log,
  });
  client.start();

  return {
    client,
    async send(input: SendInput): Promise<SendOutcome> {
      const to = smsRecipient(input);
      if (!to || !/^\d{4,15}$/.test(to)) return { kind: 'rejected', reason: 'No valid phone number to send to', code: 'InvalidNumber' };
      const prepared = prepareFor(input, to, await smsTextWithLinks(input, ctx.trackLink));
      if (!prepared.ok) return { kind: 'rejected', reason: prepared.reason, code: prepared.code };
      const sender = await selectSender(input, to, s, senders, now());
      if (!sender) return { kind: 'rejected', reason: 'No sender id for this destination', code: 'SenderIdRejected' };
      const src = sourceAddress(sender.from, s.numbers);
      const validUntil = smsValidUntil(input, now());
      const base = {
        source_addr_ton: src.ton, source_addr_npi: src.npi, source_addr: src.addr,
        dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: to,
        registered_delivery: s.registeredDelivery, validity_period: smppTime(validUntil), esm_class: 0,
      };
      ref = (ref + 1) & 0xff;
      const submits = buildSubmits(prepared.sms, s, base, ref);
      // Each part is retried on its own when the SMSC throttles it: resubmitting the whole message
      // would duplicate the parts it already accepted.
      const submitPart = async (fields: Record<string, unknown>): Promise<PDU | SmppUnavailable> => {
        for (let attempt = 0; ; attempt++) {
          let resp: PDU;
          try {
            resp = await client.submit(fields, s.submitTimeoutMs, input.signal);
          } catch (err) {
            if (err instanceof SmppUnavailable) return err;
            throw err;
          }
          const retriable = resp.command_status === 0x58 || resp.command_status === 0x14;
          if (!retriable || attempt >= PART_RETRIES || submits.length === 1) return resp;
          await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
        }
      };
      const results = await Promise.all(submits.map(submitPart));
      const failure = (r: PDU | SmppUnavailable): SendOutcome | undefined =>
        r instanceof SmppUnavailable ? { kind: 'transient', reason: `SMSC unavailable: ${r.message}`, code: 'ProviderError', retryAfterMs: 5000 }
          : r.command_status !== 0 ? mapSubmitError(r.command_status) : undefined;
      const accepted = results.filter((r) => !failure(r));
      if (!accepted.length) return failure(results[0]!)!;
      // Some parts went out: report acceptance, and mark the missing parts rejected so the message
      // ends `failed` when the receipts of the others arrive (sms.md §6.2).
      const ids = results.map((r, i) => (failure(r) ? `rejected:${input.messageId}:${i + 1}` : String((r as PDU).message_id ?? '')));
      const rejectedParts = results.length - accepted.length;
      await parts.record(input.apiSpaceId, input.messageId, ids);
      for (const id of ids) if (id.startsWith('rejected:')) await parts.settle(input.apiSpaceId, id, 'REJECTD');
      if (sender.pooled) await senders.put(input.apiSpaceId, to, sender.from, now());
      return { kind: 'accepted', providerMessageId: ids.find((id) => !id.startsWith('rejected:')), acceptedAt: now(), details: { ...prepared.details, from: sender.from, providerMessageIds: ids, ...(rejectedParts ? { partsRejected: rejectedParts } : {}) } };
    },
    async close() {
      reassembler.close();
      await client.close();
    },
  };
}

export function smppProvider(deps: SmppDeps = {}): ChannelProvider {
  return {
    channel: 'sms',
    provider: 'smpp',
    secretSettings: ['password'],
    validateSettings: validateSmppSettings,
    create: (ctx) => createSmppAdapter(ctx, deps),
  };
}
