import type { PDU } from 'smpp';
import type { InboundReport } from '../../adapter.js';
import { decodeGsm, decodeUcs2 } from '../encoding.js';

/** Incomplete concatenated MO sets are delivered as they are after this long (sms.md §7). */
export const REASSEMBLY_TIMEOUT_MS = 5 * 60 * 1000;

interface Partial {
  from: string;
  to: string;
  total: number;
  parts: Map<number, string>;
  timer: NodeJS.Timeout;
}

/** The text and concatenation info of a deliver_sm as the smpp package decoded it. */
export function moContent(pdu: PDU): { text: string; concat?: { ref: number; total: number; seq: number } } {
  const field = pdu.message_payload && (!pdu.short_message?.message || pdu.short_message.message.length === 0) ? pdu.message_payload : pdu.short_message;
  const dc = Number(pdu.data_coding ?? 0) & 0x0f;
  let text: string;
  if (Buffer.isBuffer(field)) text = dc === 8 ? decodeUcs2(field) : dc === 3 ? field.toString('latin1') : decodeGsm(field);
  else text = typeof field?.message === 'string' ? field.message : Buffer.isBuffer(field?.message) ? field.message.toString('latin1') : '';
  let concat: { ref: number; total: number; seq: number } | undefined;
  for (const ie of (field?.udh ?? []) as Buffer[]) {
    if (ie[0] === 0x00 && ie[1] === 3) concat = { ref: ie[2]!, total: ie[3]!, seq: ie[4]! };
    if (ie[0] === 0x08 && ie[1] === 4) concat = { ref: (ie[2]! << 8) | ie[3]!, total: ie[4]!, seq: ie[5]! };
  }
  if (!concat && pdu.sar_total_segments) concat = { ref: Number(pdu.sar_msg_ref_num ?? 0), total: Number(pdu.sar_total_segments), seq: Number(pdu.sar_segment_seqnum ?? 1) };
  return { text, concat };
}

/** Joins concatenated MO parts (UDH or sar_* TLVs) into one inbound message. */
export function createReassembler(emit: (report: InboundReport) => Promise<void>, timeoutMs = REASSEMBLY_TIMEOUT_MS) {
  const sets = new Map<string, Partial>();
  const flush = (key: string): Promise<void> => {
    const set = sets.get(key);
    if (!set) return Promise.resolve();
    sets.delete(key);
    clearTimeout(set.timer);
    const body = [...set.parts.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]).join('');
    return emit({ channelId: 'sms', from: { phoneNumber: set.from }, to: { phoneNumber: set.to }, body });
  };
  return {
    async add(pdu: PDU, _at: number): Promise<void> {
      const from = String(pdu.source_addr ?? '').replace(/^\+/, '');
      const to = String(pdu.destination_addr ?? '').replace(/^\+/, '');
      const { text, concat } = moContent(pdu);
      if (!concat || concat.total <= 1) {
        await emit({ channelId: 'sms', from: { phoneNumber: from }, to: { phoneNumber: to }, body: text });
        return;
      }
      const key = `${from}|${to}|${concat.ref}|${concat.total}`;
      let set = sets.get(key);
      if (!set) {
        const timer = setTimeout(() => void flush(key).catch(() => {}), timeoutMs);
        timer.unref();
        set = { from, to, total: concat.total, parts: new Map(), timer };
        sets.set(key, set);
      }
      set.parts.set(concat.seq, text);
      if (set.parts.size >= set.total) await flush(key);
    },
    close(): void {
      for (const set of sets.values()) clearTimeout(set.timer);
      sets.clear();
    },
  };
}
