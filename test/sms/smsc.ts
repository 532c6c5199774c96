import smpp, { type PDU, type Session } from 'smpp';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import type { AdapterContext, InboundReport, ReceiptReport } from '../../src/channels/adapter.js';

/**
 * A small SMSC for tests, on the smpp package's server: accepts binds, answers submit_sm with
 * sequential message ids (or a scripted command_status), and can push deliver_sm to bound ESMEs.
 */
export interface TestSmsc {
  port: number;
  submits: PDU[];
  binds: string[];
  sessions: Session[];
  /** command_status for the next submit_sm responses (shifted per submit). */
  nextStatuses: number[];
  deliver(fields: Record<string, unknown>): Promise<PDU>;
  /** Destroys every ESME connection (the SMSC "drops" them). */
  dropAll(): void;
  waitForSubmits(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startSmsc(opts: { autoRespond?: boolean } = {}): Promise<TestSmsc> {
  const submits: PDU[] = [];
  const binds: string[] = [];
  const sessions: Session[] = [];
  const nextStatuses: number[] = [];
  let seq = 0;
  const server = smpp.createServer((session: Session) => {
    sessions.push(session);
    session.on('error', () => {});
    session.on('close', () => sessions.splice(sessions.indexOf(session), 1));
    for (const cmd of ['bind_transceiver', 'bind_transmitter', 'bind_receiver']) {
      session.on(cmd, (pdu: PDU) => {
        binds.push(cmd);
        session.send(pdu.response({ system_id: 'TESTSMSC', command_status: pdu.password === 'bad' ? 0x0e : 0 }));
        (session as unknown as { role: string }).role = cmd;
      });
    }
    session.on('submit_sm', (pdu: PDU) => {
      submits.push(pdu);
      const status = nextStatuses.shift() ?? 0;
      if (opts.autoRespond === false) return;
      const id = `SMSC${++seq}`;
      if (!status) pdu.assignedId = id;
      session.send(pdu.response(status ? { command_status: status } : { message_id: id }));
    });
    session.on('enquire_link', (pdu: PDU) => session.send(pdu.response()));
    session.on('unbind', (pdu: PDU) => {
      session.send(pdu.response());
      session.close();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    port, submits, binds, sessions, nextStatuses,
    deliver(fields) {
      const target = sessions.find((s) => ['bind_transceiver', 'bind_receiver'].includes((s as unknown as { role: string }).role));
      if (!target) return Promise.reject(new Error('no receiving bind'));
      return new Promise((resolve) => target.send(new smpp.PDU('deliver_sm', fields), (resp: PDU) => resolve(resp)));
    },
    dropAll() {
      for (const s of [...sessions]) s.destroy();
    },
    async waitForSubmits(n, timeoutMs = 5000) {
      const end = Date.now() + timeoutMs;
      while (submits.length < n) {
        if (Date.now() > end) throw new Error(`expected ${n} submits, got ${submits.length}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async close() {
      for (const s of [...sessions]) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** An AdapterContext whose sink records what the adapter reports. */
export function recordingContext(settings: Record<string, unknown>, channelId = 'sms') {
  const receipts: ReceiptReport[] = [];
  const inbounds: InboundReport[] = [];
  const ctx: AdapterContext = {
    apiSpaceId: '6c1e7d2a-93b4-4f0e-a5d8-2b7c9e4f1a36',
    channelId,
    settings,
    sink: {
      async receipt(r) {
        receipts.push(r);
      },
      async inbound(r) {
        inbounds.push(r);
      },
    },
    allowPrivateTargets: true,
    publicBaseUrl: 'http://localhost:8080',
    log: pino({ level: 'silent' }),
  };
  return { ctx, receipts, inbounds };
}

export async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
