/**
 * A browser-like global environment for the vendor SDK under Node: `window` is `globalThis`,
 * an in-memory `localStorage`, `XMLHttpRequest` from xhr2 (with the `withCredentials` property
 * the SDK tests for before it opens a request) and `WebSocket` from ws. Import before the SDK.
 */
import { createRequire } from 'node:module';
import WebSocket from 'ws';

const require = createRequire(import.meta.url);
const XHR2 = require('xhr2') as { new (): object };

class MemoryStorage {
  private readonly map = new Map<string, string>();
  getItem(key: string): string | null {
    return this.map.has(key) ? this.map.get(key)! : null;
  }
  setItem(key: string, value: string): void {
    this.map.set(key, String(value));
  }
  removeItem(key: string): void {
    this.map.delete(key);
  }
  clear(): void {
    this.map.clear();
  }
}

class XMLHttpRequest extends XHR2 {
  withCredentials = false;
}

const g = globalThis as Record<string, unknown>;
g.window = globalThis;
g.localStorage = new MemoryStorage();
g.XMLHttpRequest = XMLHttpRequest;
g.WebSocket = WebSocket;

// The SDK starts a 60 s echo interval per instance; it must not keep the test process alive.
const setIntervalOriginal = globalThis.setInterval;
g.setInterval = ((fn: () => void, ms?: number) => {
  const t = setIntervalOriginal(fn, ms);
  t.unref();
  return t;
}) as typeof setInterval;

export const sdkStorage = g.localStorage as MemoryStorage;
