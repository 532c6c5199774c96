import { connect, type Socket } from 'node:net';

/**
 * A lean HTTP/1.1 load client for open-loop runs: a fixed set of keep-alive connections, each
 * carrying one request at a time, sending one pre-built request (the same bytes every time) and
 * reading only the status line, `content-length` and the body's length of each answer.
 *
 * Why not `node:http`: the load generator shares the benchmark machine's cores with the server
 * under test. Measured on two cores at ≈ 4,600 requests/s, `node:http`'s client took ≈ 65 µs of CPU
 * per request (a third of a core) where this takes a fraction of that; a remote client costs the
 * server's machine nothing. The leaner the instrument, the closer a latency figure is to what a
 * client elsewhere would see. Only what the benchmark's servers send is understood: answers with a
 * `content-length` (no chunked bodies), no `1xx`, no pipelining.
 */
export class RawHttpClient {
  private readonly idle: Conn[] = [];
  private readonly waiting: Array<(c: Conn) => void> = [];
  private readonly all: Conn[] = [];

  private constructor(private readonly request: Buffer) {}

  /** Opens `connections` connections to 127.0.0.1:`port` for requests of `method path` with `headers` and `body`. */
  static async open(port: number, connections: number, method: string, path: string, headers: Record<string, string>, body = ''): Promise<RawHttpClient> {
    const head = [`${method} ${path} HTTP/1.1`, `host: 127.0.0.1:${port}`, 'connection: keep-alive', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), `content-length: ${Buffer.byteLength(body)}`];
    const client = new RawHttpClient(Buffer.from(`${head.join('\r\n')}\r\n\r\n${body}`));
    await Promise.all(Array.from({ length: connections }, () => new Promise<void>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.off('error', reject);
        const c = new Conn(socket);
        client.all.push(c);
        client.idle.push(c);
        resolve();
      });
      socket.once('error', reject);
    })));
    return client;
  }

  /** Sends the request on the next free connection; resolves with the answer's status (0: the connection failed). */
  send(): Promise<number> {
    const c = this.idle.pop();
    if (c) return this.on(c);
    return new Promise<Conn>((r) => this.waiting.push(r)).then((conn) => this.on(conn));
  }

  private async on(c: Conn): Promise<number> {
    const status = await c.exchange(this.request);
    const next = this.waiting.shift();
    if (next) next(c);
    else this.idle.push(c);
    return status;
  }

  close(): void {
    for (const c of this.all) c.socket.destroy();
  }
}

const HEADER_END = Buffer.from('\r\n\r\n');

class Conn {
  private buf: Buffer = Buffer.alloc(0);
  private done: ((status: number) => void) | undefined;

  constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      this.parse();
    });
    const fail = () => {
      const d = this.done;
      this.done = undefined;
      d?.(0);
    };
    socket.on('error', fail);
    socket.on('close', fail);
  }

  exchange(request: Buffer): Promise<number> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve(0);
      this.done = resolve;
      this.socket.write(request);
    });
  }

  /** Completes the exchange once a whole answer (head and `content-length` bytes) is buffered. */
  private parse(): void {
    const end = this.buf.indexOf(HEADER_END);
    if (end < 0) return;
    const head = this.buf.toString('latin1', 0, end);
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    const total = end + 4 + (m ? Number(m[1]) : 0);
    if (this.buf.length < total) return;
    const status = Number(head.slice(9, 12));
    this.buf = this.buf.subarray(total);
    const d = this.done;
    this.done = undefined;
    d?.(status);
  }
}
