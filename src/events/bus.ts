import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';

/**
 * Realtime fan-out (websocket frames, typing, cache invalidation). Best effort: durable consumers
 * read the `events` table instead. In-process by default; Redis pub/sub across processes.
 */
export interface EventBus {
  publish(channel: string, message: unknown): void;
  /** Returns an unsubscribe function. */
  subscribe(channel: string, handler: (message: unknown) => void): () => void;
  close(): Promise<void>;
}

export function createLocalBus(): EventBus {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    publish: (channel, message) => void emitter.emit(channel, message),
    subscribe(channel, handler) {
      emitter.on(channel, handler);
      return () => void emitter.off(channel, handler);
    },
    close: async () => void emitter.removeAllListeners(),
  };
}

/**
 * Redis pub/sub bus. Local subscribers get messages at once; other processes get them through
 * Redis (this process skips its own echoes by origin id). `prefix` isolates installations/tests.
 */
export function createRedisBus(url: string, prefix = 'sb:'): EventBus {
  const origin = randomUUID();
  const local = createLocalBus();
  const pub = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 2 });
  const sub = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: null });
  pub.on('error', () => {});
  sub.on('error', () => {});
  const counts = new Map<string, number>();
  sub.on('message', (redisChannel: string, raw: string) => {
    try {
      const { o, m } = JSON.parse(raw) as { o: string; m: unknown };
      if (o !== origin) local.publish(redisChannel.slice(prefix.length), m);
    } catch {}
  });
  return {
    publish(channel, message) {
      local.publish(channel, message);
      pub.publish(prefix + channel, JSON.stringify({ o: origin, m: message })).catch(() => {});
    },
    subscribe(channel, handler) {
      const off = local.subscribe(channel, handler);
      const n = (counts.get(channel) ?? 0) + 1;
      counts.set(channel, n);
      if (n === 1) sub.subscribe(prefix + channel).catch(() => {});
      return () => {
        off();
        const left = (counts.get(channel) ?? 1) - 1;
        if (left <= 0) {
          counts.delete(channel);
          sub.unsubscribe(prefix + channel).catch(() => {});
        } else counts.set(channel, left);
      };
    },
    async close() {
      await local.close();
      pub.disconnect();
      sub.disconnect();
    },
  };
}
