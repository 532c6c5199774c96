import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestServer } from '../helpers/harness.js';
import { settle } from '../messages/helpers.js';

/**
 * The One API calls of a channel's end-to-end test: sends, reads and the channel's signed provider
 * callback, for the space and token its first test sets (read through `space()`/`token()`).
 */
export function channelApi(s: () => TestServer, space: () => string, token: () => string, callback: { channelId: string; header: string; sign(raw: string): string }) {
  const url = (p: string) => `/apispaces/${space()}${p}`;
  const api = {
    url,
    async send(payload: Record<string, unknown>): Promise<string> {
      const res = await s().request({ method: 'POST', url: url('/messages'), token: token(), payload });
      assert.equal(res.statusCode, 201, res.body);
      return res.json().messageId as string;
    },
    async get(id: string) {
      return (await s().request({ method: 'GET', url: url(`/messages/${id}`), token: token() })).json();
    },
    /**
     * Sends `payload` to a peer scripted to throttle the first try: the message waits in
     * `retrying`, and the retry 40 s later (on `clock`) is accepted. Resolves to its id.
     */
    async sendThrottledOnce(payload: Record<string, unknown>, clock: { advance(ms: number): void }): Promise<string> {
      const id = await api.send(payload);
      await settle(s());
      assert.equal((await api.get(id)).status, 'retrying');
      clock.advance(40_000);
      await settle(s());
      const after = await api.get(id);
      assert.equal(after.status, 'sent');
      assert.deepEqual(after.statusDetails.attempts.map((a: { outcome: string }) => a.outcome), ['retrying', 'accepted']);
      return id;
    },
    /** Posts `raw` to the channel's callback, signed unless `signature` is given (`null`: none). */
    callback(raw: string, signature: string | null = callback.sign(raw)) {
      return s().request({
        method: 'POST', url: url(`/channels/${callback.channelId}/callback`), token: null, payload: raw,
        headers: { 'content-type': 'application/json', ...(signature ? { [callback.header]: signature } : {}) },
      });
    },
  };
  return api;
}

/** A request the peer received: `body` is the parsed JSON, if it was JSON; `raw` the bytes as sent. */
export interface SeenRequest { method: string; path: string; headers: http.IncomingHttpHeaders; body: any; raw: Buffer; answeredId?: string }
export type ScriptedAnswer = (res: http.ServerResponse) => void;

/**
 * A provider's far side on 127.0.0.1: it records every request (JSON and form bodies parsed); `check`
 * (a signature check, say) may answer a request itself and return true; otherwise the next
 * scripted answer is used if any, else `answer` (the provider's success).
 */
export function scriptedPeer(answer: (seen: SeenRequest, req: http.IncomingMessage, res: http.ServerResponse) => void, check?: (seen: SeenRequest, req: http.IncomingMessage, res: http.ServerResponse) => boolean) {
  const seen: SeenRequest[] = [];
  const script: ScriptedAnswer[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const type = req.headers['content-type'] ?? '';
      // An OAuth token request is a form, a media upload multipart (kept raw); the rest is JSON.
      const form = /^application\/x-www-form-urlencoded/.test(type);
      const json = /json/.test(type) || (!type && raw.length > 0);
      const body = !raw.length ? undefined : form ? Object.fromEntries(new URLSearchParams(raw.toString('utf8'))) : json ? JSON.parse(raw.toString('utf8')) : undefined;
      const entry: SeenRequest = { method: req.method!, path: req.url!, headers: req.headers, body, raw };
      seen.push(entry);
      if (check?.(entry, req, res)) return;
      const next = script.shift();
      if (next) return next(res);
      answer(entry, req, res);
    });
  });
  return {
    seen, script,
    start: () => new Promise<string>((ok) => server.listen(0, '127.0.0.1', () => ok(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))),
    stop: () => new Promise<void>((ok) => { server.closeAllConnections(); server.close(() => ok()); }),
  };
}
