import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { PDU } from 'smpp';
import type { InboundReport } from '../../adapter.js';
import { createReassembler, moContent } from './reassembly.js';

const part = (seq: number, total: number, message: string, ref = 9) =>
  ({ source_addr: '+447400123456', destination_addr: '88000', data_coding: 0, short_message: { udh: [Buffer.from([0x00, 0x03, ref, total, seq])], message } }) as unknown as PDU;

describe('MO reassembly', () => {
  it('joins parts in sequence order and delivers incomplete sets after the timeout', async () => {
    const got: InboundReport[] = [];
    const r = createReassembler(async (m) => void got.push(m), 50);
    await r.add(part(3, 3, 'c'), 0);
    await r.add(part(1, 3, 'a'), 0);
    assert.equal(got.length, 0);
    await r.add(part(2, 3, 'b'), 0);
    assert.deepEqual(got.map((m) => [m.from, m.body]), [[{ phoneNumber: '447400123456' }, 'abc']]);
    await r.add(part(1, 2, 'lonely', 10), 0);
    await new Promise((res) => setTimeout(res, 120));
    assert.equal(got[1]!.body, 'lonely');
    r.close();
  });

  it('reads SAR TLVs, message_payload and raw buffers', () => {
    const sar = moContent({ short_message: { message: 'x' }, sar_msg_ref_num: 7, sar_total_segments: 2, sar_segment_seqnum: 2 } as unknown as PDU);
    assert.deepEqual(sar.concat, { ref: 7, total: 2, seq: 2 });
    assert.equal(moContent({ short_message: { message: '' }, message_payload: { message: 'long text' } } as unknown as PDU).text, 'long text');
    assert.equal(moContent({ data_coding: 8, short_message: Buffer.from([0x04, 0x16]) } as unknown as PDU).text, 'Ж');
    assert.equal(moContent({ data_coding: 0, short_message: Buffer.from([0x1b, 0x65]) } as unknown as PDU).text, '€');
  });
});
