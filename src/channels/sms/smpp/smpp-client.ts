import smpp, { type PDU, type Session } from 'smpp';
import { isIP } from 'node:net';
import type { Logger } from 'pino';

/**
 * One ESME connection set to an SMSC (SMPP 3.4): a transceiver bind, or a transmitter plus a
 * receiver bind; a send window; a submit rate cap; enquire_link keep-alive; and rebinding with
 * exponential back-off. Submissions made while unbound wait in memory until a bind is up (or
 * their deadline passes); submissions in flight when a connection drops fail as `connection lost`.
 */
export interface SmppClientOptions {
  host: string;
  port: number;
  tls: boolean;
  /** Verify the SMSC's certificate (default true; false only for self-signed test SMSCs). */
  tlsRejectUnauthorized?: boolean;
  systemId: string;
  password: string;
  systemType: string;
  bindMode: 'transceiver' | 'transmitter+receiver';
  enquireLinkSeconds: number;
  windowSize: number;
  throughputPerSecond: number;
  rebindMinMs: number;
  rebindMaxMs: number;
  responseTimeoutMs: number;
  /** Handles a deliver_sm (receipt or MO); resolves to the deliver_sm_resp command_status. */
  onDeliver(pdu: PDU): Promise<number>;
  log: Logger;
}

export class SmppUnavailable extends Error {}

interface Pending {
  fields: Record<string, unknown>;
  resolve(pdu: PDU): void;
  reject(err: Error): void;
  deadline: number;
  signal?: AbortSignal;
}

interface Bind {
  role: 'transceiver' | 'transmitter' | 'receiver';
  session: Session;
  bound: boolean;
  attempt: number;
  timer?: NodeJS.Timeout;
  keepAlive?: NodeJS.Timeout;
  inFlight: Map<number, { pending: Pending; timer: NodeJS.Timeout }>;
}

export class SmppClient {
  private binds: Bind[] = [];
  private queue: Pending[] = [];
  private closed = false;
  private tokens: number;
  private readonly capacity: number;
  private lastRefill = Date.now();
  private pumpTimer?: NodeJS.Timeout;
  private readonly waiters = new Set<() => void>();

  constructor(private readonly o: SmppClientOptions) {
    this.capacity = Math.max(1, Math.ceil(o.throughputPerSecond / 10));
    this.tokens = this.capacity;
  }

  start(): void {
    const roles: Bind['role'][] = this.o.bindMode === 'transceiver' ? ['transceiver'] : ['transmitter', 'receiver'];
    for (const role of roles) this.connect({ role, bound: false, attempt: 0, inFlight: new Map() } as Bind);
  }

  /** True when a bind that can submit is up. */
  get ready(): boolean {
    return this.binds.some((b) => b.bound && b.role !== 'receiver');
  }

  /** Resolves once a transmitting bind is up (tests, benchmarks). */
  whenReady(timeoutMs = 5000): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters.delete(done);
        reject(new SmppUnavailable('bind timeout'));
      }, timeoutMs);
      const done = () => {
        clearTimeout(t);
        this.waiters.delete(done);
        resolve();
      };
      this.waiters.add(done);
    });
  }

  /** Queues one submit_sm; resolves with its response PDU (any command_status). */
  submit(fields: Record<string, unknown>, timeoutMs: number, signal?: AbortSignal): Promise<PDU> {
    if (this.closed) return Promise.reject(new SmppUnavailable('client closed'));
    return new Promise<PDU>((resolve, reject) => {
      const pending: Pending = { fields, resolve, reject, deadline: Date.now() + timeoutMs, signal };
      signal?.addEventListener('abort', () => this.drop(pending, new SmppUnavailable('aborted')), { once: true });
      this.queue.push(pending);
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.pumpTimer);
    for (const p of this.queue.splice(0)) p.reject(new SmppUnavailable('client closed'));
    await Promise.all(this.binds.map((b) => this.shutdown(b)));
  }

  private drop(p: Pending, err: Error): void {
    const i = this.queue.indexOf(p);
    if (i >= 0) {
      this.queue.splice(i, 1);
      p.reject(err);
    }
  }

  private connect(bind: Bind): void {
    if (this.closed) return;
    if (!this.binds.includes(bind)) this.binds.push(bind);
    const session = smpp.connect({ host: this.o.host, port: this.o.port, tls: this.o.tls, rejectUnauthorized: this.o.tlsRejectUnauthorized !== false, ...(isIP(this.o.host) ? {} : { servername: this.o.host }) });
    bind.session = session;
    session.socket.setNoDelay(true);
    session.on(this.o.tls ? 'secureConnect' : 'connect', () => {
      const command = bind.role === 'transceiver' ? 'bind_transceiver' : bind.role === 'transmitter' ? 'bind_transmitter' : 'bind_receiver';
      session.send(new smpp.PDU(command, { system_id: this.o.systemId, password: this.o.password, system_type: this.o.systemType, interface_version: 0x34 }), (resp: PDU) => {
        if (resp.command_status !== 0) {
          this.o.log.warn({ status: resp.command_status, role: bind.role }, 'SMPP bind refused');
          session.destroy();
          return;
        }
        bind.bound = true;
        bind.attempt = 0;
        this.startKeepAlive(bind);
        this.o.log.info({ role: bind.role, host: this.o.host }, 'SMPP bound');
        if (this.ready) for (const w of [...this.waiters]) w();
        this.pump();
      });
    });
    session.on('deliver_sm', (pdu: PDU) => {
      this.o.onDeliver(pdu).then(
        (status) => session.send(pdu.response({ command_status: status })),
        () => session.send(pdu.response({ command_status: smpp.errors.ESME_RX_T_APPN })),
      );
    });
    session.on('enquire_link', (pdu: PDU) => session.send(pdu.response()));
    session.on('unbind', (pdu: PDU) => {
      session.send(pdu.response());
      session.close();
    });
    session.on('error', (err: Error) => this.o.log.debug({ err: err.message }, 'SMPP socket error'));
    session.on('close', () => this.lost(bind, session));
  }

  private startKeepAlive(bind: Bind): void {
    clearInterval(bind.keepAlive);
    bind.keepAlive = setInterval(() => {
      let answered = false;
      const timer = setTimeout(() => {
        if (!answered) bind.session.destroy();
      }, Math.max(1000, this.o.responseTimeoutMs));
      bind.session.send(new smpp.PDU('enquire_link', {}), () => {
        answered = true;
        clearTimeout(timer);
      });
    }, this.o.enquireLinkSeconds * 1000);
    bind.keepAlive.unref();
  }

  private lost(bind: Bind, session: Session): void {
    if (bind.session !== session) return;
    const wasBound = bind.bound;
    bind.bound = false;
    clearInterval(bind.keepAlive);
    for (const [, f] of bind.inFlight) {
      clearTimeout(f.timer);
      f.pending.reject(new SmppUnavailable('connection lost'));
    }
    bind.inFlight.clear();
    if (this.closed) return;
    const delay = Math.min(this.o.rebindMaxMs, this.o.rebindMinMs * 2 ** bind.attempt) * (0.8 + Math.random() * 0.4);
    bind.attempt++;
    if (wasBound) this.o.log.warn({ role: bind.role, delayMs: Math.round(delay) }, 'SMPP connection lost, rebinding');
    bind.timer = setTimeout(() => this.connect(bind), delay);
    bind.timer.unref();
  }

  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.lastRefill) * this.o.throughputPerSecond) / 1000);
    this.lastRefill = now;
  }

  private pump(): void {
    if (this.pumpTimer) return;
    const now = Date.now();
    while (this.queue.length && this.queue[0]!.deadline <= now) this.queue.shift()!.reject(new SmppUnavailable('no SMSC bind available'));
    if (!this.queue.length) return;
    const tx = this.binds.filter((b) => b.bound && b.role !== 'receiver');
    if (!tx.length) {
      // Wake up to expire deadlines even when no bind comes back.
      this.pumpTimer = setTimeout(() => {
        this.pumpTimer = undefined;
        this.pump();
      }, Math.max(5, Math.min(1000, this.queue[0]!.deadline - now)));
      this.pumpTimer.unref();
      return;
    }
    this.refill();
    for (const bind of tx) {
      while (this.queue.length && bind.inFlight.size < this.o.windowSize && this.tokens >= 1) {
        const p = this.queue.shift()!;
        this.tokens -= 1;
        this.transmit(bind, p);
      }
    }
    if (this.queue.length && this.tokens < 1) {
      const wait = Math.ceil(((1 - this.tokens) * 1000) / this.o.throughputPerSecond);
      this.pumpTimer = setTimeout(() => {
        this.pumpTimer = undefined;
        this.pump();
      }, Math.max(1, wait));
      this.pumpTimer.unref();
    }
  }

  private transmit(bind: Bind, p: Pending): void {
    const pdu = new smpp.PDU('submit_sm', p.fields);
    const ok = bind.session.send(pdu, (resp: PDU) => {
      const f = bind.inFlight.get(pdu.sequence_number);
      if (!f) return;
      clearTimeout(f.timer);
      bind.inFlight.delete(pdu.sequence_number);
      p.resolve(resp);
      this.pump();
    });
    if (!ok) {
      this.queue.unshift(p);
      return;
    }
    const timer = setTimeout(() => {
      bind.inFlight.delete(pdu.sequence_number);
      p.reject(new SmppUnavailable('submit_sm_resp timeout'));
      this.pump();
    }, this.o.responseTimeoutMs);
    timer.unref();
    bind.inFlight.set(pdu.sequence_number, { pending: p, timer });
  }

  private async shutdown(bind: Bind): Promise<void> {
    clearTimeout(bind.timer);
    clearInterval(bind.keepAlive);
    const session = bind.session;
    if (!session) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => session.destroy(() => resolve()), 500);
      if (!bind.bound) {
        clearTimeout(t);
        session.destroy();
        resolve();
        return;
      }
      session.send(new smpp.PDU('unbind', {}), () => {
        clearTimeout(t);
        session.destroy();
        resolve();
      });
    });
    bind.bound = false;
  }
}
