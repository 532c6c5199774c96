import assert from 'node:assert/strict';
import type { TestServer } from '../helpers/harness.js';

/**
 * The One API calls of a channel's end-to-end test: sends, reads and the channel's signed provider
 * callback, for the space and token its first test sets (read through `space()`/`token()`).
 */
export function channelApi(s: () => TestServer, space: () => string, token: () => string, callback: { channelId: string; header: string; sign(raw: string): string }) {
  const url = (p: string) => `/apispaces/${space()}${p}`;
  return {
    url,
    async send(payload: Record<string, unknown>): Promise<string> {
      const res = await s().request({ method: 'POST', url: url('/messages'), token: token(), payload });
      assert.equal(res.statusCode, 201, res.body);
      return res.json().messageId as string;
    },
    async get(id: string) {
      return (await s().request({ method: 'GET', url: url(`/messages/${id}`), token: token() })).json();
    },
    /** Posts `raw` to the channel's callback, signed unless `signature` is given (`null`: none). */
    callback(raw: string, signature: string | null = callback.sign(raw)) {
      return s().request({
        method: 'POST', url: url(`/channels/${callback.channelId}/callback`), token: null, payload: raw,
        headers: { 'content-type': 'application/json', ...(signature ? { [callback.header]: signature } : {}) },
      });
    },
  };
}
