import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestServer } from '../helpers/harness.js';

export interface Received {
  url: string;
  body: Record<string, any>;
}

/** A local HTTP receiver playing a custom channel's endpoint; `respond` sets its answer. */
export function receiver() {
  const seen: Received[] = [];
  let answer: (req: http.IncomingMessage, res: http.ServerResponse, body: Record<string, any>) => void = (_q, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: Record<string, any> = {};
      try { body = JSON.parse(text); } catch { body = { raw: text }; }
      seen.push({ url: req.url!, body });
      answer(req, res, body);
    });
  });
  return {
    seen,
    respond(fn: typeof answer) { answer = fn; },
    start: () => new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok)),
    stop: () => new Promise<void>((ok) => { server.closeAllConnections(); server.close(() => ok()); }),
    get base() { return `http://127.0.0.1:${(server.address() as AddressInfo).port}`; },
  };
}

/** Configures a custom channel that POSTs `{to, title, body, ref, meta}` to `url`. */
export async function customChannel(s: TestServer, space: string, channelId: string, url: string, userIdProperty = 'crmId'): Promise<void> {
  const res = await s.request({
    method: 'PUT', url: `/apispaces/${space}/channels/${channelId}`,
    payload: { enabled: true, provider: 'http', settings: { url, method: 'POST', contentType: 'application/json', userIdProperty, bodyTemplate: '{"to": "{{userId}}", "title": "{{title}}", "body": "{{body}}", "ref": "{{messageId}}", "meta": "{{metadata.order}}"}' } },
  });
  if (res.statusCode >= 300) throw new Error(`channel config: ${res.statusCode} ${res.body}`);
}

/** Waits until the workers have nothing running and nothing due. */
export const settle = (s: TestServer) => s.container.worker!.idle();

export async function eventsFor(s: TestServer, messageId: string): Promise<Array<{ name: string; payload: any; meta: any }>> {
  const all = await s.container.platform.events.readAfter(0, 100_000);
  return all.filter((e) => (e.payload as { id?: string })?.id === messageId).map((e) => ({ name: e.name, payload: e.payload, meta: e.meta }));
}
