import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';

/**
 * Realtime fan-out (websocket frames, typing, cache invalidation). Best effort: durable consumers
 * read the `events` table instead. In-process by default; Redis pub/sub across processes.
 */
export interface EventBus {
  /**
   * Delivers to this process's subscribers at once (synchronously) and to other processes through
   * Redis (JSON-serialised). A throwing subscriber never affects the publisher or other subscribers.
   */
  publish(channel: string, message: unknown): void;
  /** Returns an unsubscribe function. Cross-process delivery starts once `ready()` resolves. */
  subscribe(channel: string, handler: (message: unknown) => void): () => void;
  /** Resolves when every subscription made so far is active (Redis SUBSCRIBE acknowledged). */
  ready(): Promise<void>;
  close(): Promise<void>;
}

export function createLocalBus(onError: (err: unknown, channel: string) => void = () => {}): EventBus {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    publish: (channel, message) => void emitter.emit(channel, message),
    subscribe(channel, handler) {
      // Isolate subscribers: EventEmitter would stop at the first throwing listener.
      const safe = (message: unknown) => {
        try {
          handler(message);
        } catch (err) {
          onError(err, channel);
        }
      };
      emitter.on(channel, safe);
      return () => void emitter.off(channel, safe);
    },
    ready: async () => {},
    close: async () => void emitter.removeAllListeners(),
  };
}

/**
 * Redis pub/sub bus. Local subscribers get messages at once; other processes get them through
 * Redis (this process skips its own echoes by origin id). `prefix` isolates installations/tests.
 */
export function createRedisBus(url: string, prefix = 'sb:', onError: (err: unknown, channel: string) => void = () => {}): EventBus {
  const origin = randomUUID();
  const local = createLocalBus(onError);
  const pub = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 2 });
  // The subscriber connection re-subscribes by itself after a reconnect (ioredis autoResubscribe).
  const sub = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: null });
  pub.on('error', () => {});
  sub.on('error', () => {});
  // ioredis writes a SUBSCRIBE issued while the connection is still in its handshake at once
  // (Redis accepts it while loading). The connection is then in subscriber mode when ioredis runs
  // its ready check (INFO); the check fails and the connection is closed and reopened, without
  // those subscriptions (they were never "ready" to be restored) and with the queued ones
  // rejected. A server lost its frames, token-invalidation and event channels that way whenever
  // its modules subscribed in that window (test/platform/bus.test.ts finds the window every run;
  // the two-process websocket test hit it in about one run in four). So subscription commands
  // wait until the connection is ready.
  const whenReady = (): Promise<void> => (sub.status === 'ready' ? Promise.resolve() : new Promise((resolve) => sub.once('ready', () => resolve())));
  const counts = new Map<string, number>();
  const pending = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    const settled = p.catch(() => {}).finally(() => pending.delete(settled));
    pending.add(settled);
  };
  sub.on('message', (redisChannel: string, raw: string) => {
    let parsed: { o: string; m: unknown };
    try {
      parsed = JSON.parse(raw) as { o: string; m: unknown };
    } catch {
      return;
    }
    if (parsed.o !== origin && redisChannel.startsWith(prefix)) local.publish(redisChannel.slice(prefix.length), parsed.m);
  });
  /** SUBSCRIBE once the connection is ready; tried again while the channel is still wanted. */
  const subscribeRemote = (channel: string): void => {
    track(whenReady().then(() => sub.subscribe(prefix + channel)).catch((err) => {
      onError(err, channel);
      setTimeout(() => {
        if (counts.has(channel)) subscribeRemote(channel);
      }, 200).unref();
    }));
  };
  return {
    publish(channel, message) {
      local.publish(channel, message);
      let raw: string;
      try {
        raw = JSON.stringify({ o: origin, m: message });
      } catch (err) {
        onError(err, channel);
        return;
      }
      pub.publish(prefix + channel, raw).catch((err) => onError(err, channel));
    },
    subscribe(channel, handler) {
      const off = local.subscribe(channel, handler);
      const n = (counts.get(channel) ?? 0) + 1;
      counts.set(channel, n);
      if (n === 1) subscribeRemote(channel);
      let done = false;
      return () => {
        if (done) return;
        done = true;
        off();
        const left = (counts.get(channel) ?? 1) - 1;
        if (left <= 0) {
          counts.delete(channel);
          track(whenReady().then(() => sub.unsubscribe(prefix + channel)));
        } else counts.set(channel, left);
      };
    },
    async ready() {
      while (pending.size) await Promise.all([...pending]);
    },
    async close() {
      await local.close();
      // quit() lets queued publishes go out; disconnect() is the fallback for a dead connection.
      await Promise.all([pub, sub].map((c) => Promise.race([c.quit().catch(() => {}), new Promise((r) => setTimeout(r, 500).unref())]).then(() => c.disconnect())));
    },
  };
}

/**
 * The bus of a process whose workers run on a worker thread (`WORKER_THREAD`, src/worker-thread.ts)
 * without Redis: the main thread's container and the worker thread's each hold one, joined by a
 * `BroadcastChannel` named `name`. Messages cross as JSON, as they would through Redis, gathered
 * into one post per turn of the publishing thread's code (a dispatch group's commit announces all
 * its events at once): a post and its delivery cost both threads a few microseconds however small
 * the message.
 */
export function createThreadBus(name: string, onError: (err: unknown, channel: string) => void = () => {}): EventBus {
  const origin = randomUUID();
  const local = createLocalBus(onError);
  const link = new BroadcastChannel(name);
  (link as unknown as { unref(): void }).unref();
  link.onmessage = (event) => {
    let parsed: { o: string; l: Array<{ c: string; m: unknown }> };
    try {
      parsed = JSON.parse((event as { data: string }).data) as typeof parsed;
    } catch {
      return;
    }
    if (parsed.o === origin || !Array.isArray(parsed.l)) return;
    for (const { c, m } of parsed.l) local.publish(c, m);
  };
  /** Serialised messages not yet posted, or undefined when none are. */
  let pending: string[] | undefined;
  const flush = () => {
    if (!pending) return;
    const data = `{"o":${JSON.stringify(origin)},"l":[${pending.join(',')}]}`;
    pending = undefined;
    try {
      link.postMessage(data);
    } catch (err) {
      onError(err, '*');
    }
  };
  return {
    publish(channel, message) {
      local.publish(channel, message);
      let item: string;
      try {
        item = JSON.stringify({ c: channel, m: message });
      } catch (err) {
        onError(err, channel);
        return;
      }
      if (!pending) {
        pending = [];
        queueMicrotask(flush);
      }
      pending.push(item);
    },
    subscribe: local.subscribe,
    ready: local.ready,
    async close() {
      flush();
      link.close();
      await local.close();
    },
  };
}
