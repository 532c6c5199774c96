import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { guardedLookup, isPublicAddress } from './target-guard.js';

export interface SendResult {
  status: number | null;
  error: string | null;
}

/**
 * POSTs one webhook request through keep-alive agents. Never follows redirects; the whole
 * exchange (connect, headers, body) must finish within `timeoutMs`. Targets are checked on the
 * address actually connected to (webhooks.md §4.7).
 */
export function createSender(opts: { allowPrivate: boolean; allowHttp: boolean }) {
  const agents = {
    'http:': new http.Agent({ keepAlive: true, maxSockets: 64, scheduling: 'lifo' }),
    'https:': new https.Agent({ keepAlive: true, maxSockets: 64, scheduling: 'lifo' }),
  };
  const lookup = guardedLookup(opts.allowPrivate);

  function send(rawUrl: string, headers: Record<string, string>, body: Buffer, timeoutMs: number, signal: AbortSignal): Promise<SendResult> {
    let url: URL;
    try {
      url = new URL(rawUrl);
    } catch {
      return Promise.resolve({ status: null, error: 'invalid URL' });
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && opts.allowHttp)) return Promise.resolve({ status: null, error: 'refused: not an https URL' });
    const host = url.hostname.replace(/^\[|\]$/g, '');
    // IP literals never go through `lookup`, so they are checked here.
    if (!opts.allowPrivate && isIP(host) && !isPublicAddress(host)) return Promise.resolve({ status: null, error: `refused: ${host} is not a public address` });
    const client = url.protocol === 'https:' ? https : http;
    return new Promise((resolve) => {
      let settled = false;
      const done = (r: SendResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(r);
      };
      const req = client.request(url, {
        method: 'POST',
        agent: agents[url.protocol as 'http:' | 'https:'],
        lookup,
        headers: { ...headers, 'content-length': String(body.length) },
      });
      const timer = setTimeout(() => {
        done({ status: null, error: `timeout after ${timeoutMs} ms` });
        req.destroy();
      }, timeoutMs);
      const onAbort = () => {
        done({ status: null, error: 'aborted' });
        req.destroy();
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      req.on('error', (err: Error & { code?: string }) => done({ status: null, error: err.code === 'EBLOCKEDTARGET' ? `refused: ${err.message}` : `${err.code ?? 'error'}: ${err.message}`.slice(0, 500) }));
      req.on('response', (res) => {
        res.on('data', () => {});
        res.on('end', () => done({ status: res.statusCode ?? 0, error: null }));
        res.on('error', (err) => done({ status: null, error: err.message }));
      });
      req.end(body);
    });
  }

  return {
    send,
    close() {
      agents['http:'].destroy();
      agents['https:'].destroy();
    },
  };
}
