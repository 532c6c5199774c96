import type { FastifyRequest } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import type { Config } from '../config/config.js';
import type { Clock } from '../lib/clock.js';
import { errors } from './errors.js';

/**
 * Rate limits (conventions.md §9.2), as an `onRequest` hook registered after the auth hook so
 * `request.actor` and `request.space` are known:
 *
 * - one token bucket per credential (`RATE_LIMIT_PER_CREDENTIAL`) and one per API space
 *   (`RATE_LIMIT_PER_SPACE`), requests per second with a burst of four times the rate; 0 = off;
 * - one bucket per client IP shared by the unauthenticated session-start endpoints
 *   (`RATE_LIMIT_SESSION_START_PER_IP`, default 20/s). A route takes part when it sets
 *   `config.rateLimit: 'sessionStart'`, or when its URL pattern is one of
 *   `GET …/sessions/start`, `POST …/sessions`, `GET …/sessions/tokens/anon`
 *   (under `/apispaces/:apiSpaceId` or the `/cpaas` alias).
 *
 * A request is admitted only when every bucket it draws from has a token, and then takes one from
 * each. Over the limit → 429 `TooManyRequests` with `Retry-After` in whole seconds. Buckets live in
 * process memory (each server process limits on its own); idle ones are dropped once they have
 * refilled, and the table is capped, so memory stays bounded however many clients appear.
 */
declare module 'fastify' {
  interface FastifyContextConfig {
    rateLimit?: 'sessionStart';
  }
}

const BURST = 4;
const SWEEP_EVERY_MS = 10_000;

const SESSION_START = /^(?:\/apispaces\/:[^/]+|\/cpaas)\/sessions(\/start|\/tokens\/anon)?\/?$/i;

/** Whether a route (method + URL pattern) is one of the session-start endpoints. */
export function isSessionStartRoute(method: string, url: string): boolean {
  const m = SESSION_START.exec(url);
  if (!m) return false;
  const tail = m[1]?.toLowerCase();
  return tail === undefined ? method === 'POST' : method === 'GET' || method === 'HEAD';
}

interface Bucket {
  tokens: number;
  at: number;
  rate: number;
}

/** Token buckets keyed by string, with idle eviction and a size cap. */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweep = 0;

  constructor(
    private readonly now: () => number,
    private readonly maxBuckets = 100_000,
  ) {}

  get size(): number {
    return this.buckets.size;
  }

  /**
   * Takes one token from every bucket, or none. Returns 0 when admitted, else the seconds until
   * every bucket has a token again and the index of the first bucket that was empty.
   */
  take(wants: ReadonlyArray<{ key: string; rate: number }>): { wait: number; empty?: number } {
    const now = this.now();
    this.sweep(now);
    const states = wants.map(({ key, rate }) => {
      const b = this.buckets.get(key);
      const tokens = b ? Math.min(rate * BURST, b.tokens + ((now - b.at) / 1000) * rate) : rate * BURST;
      return { key, rate, tokens };
    });
    const admitted = states.every((s) => s.tokens >= 1);
    let wait = 0;
    let empty: number | undefined;
    for (const [i, s] of states.entries()) {
      if (admitted) s.tokens -= 1;
      else if (s.tokens < 1) {
        wait = Math.max(wait, (1 - s.tokens) / s.rate);
        empty ??= i;
      }
      // Re-insert so Map order is least-recently-used first (the cap evicts from the front).
      this.buckets.delete(s.key);
      this.buckets.set(s.key, { tokens: s.tokens, at: now, rate: s.rate });
    }
    while (this.buckets.size > this.maxBuckets) this.buckets.delete(this.buckets.keys().next().value as string);
    return { wait, empty };
  }

  /** Drops buckets that have refilled: a full bucket is the same as no bucket. */
  private sweep(now: number): void {
    if (now - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = now;
    for (const [key, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * b.rate >= b.rate * BURST) this.buckets.delete(key);
    }
  }
}

function credentialKey(request: FastifyRequest): string | undefined {
  const a = request.actor;
  if (!a) return undefined;
  switch (a.kind) {
    case 'access':
    case 'session':
      return `${a.kind}:${a.tokenId}`;
    case 'user':
      return `user:${a.username}`;
    default:
      return 'admin';
  }
}

export function createRateLimitHook(deps: { config: Config; clock: Clock; metrics?: Registry }) {
  const { config, clock } = deps;
  const perCredential = config.rateLimitPerCredential;
  const perSpace = config.rateLimitPerSpace;
  const perIp = config.rateLimitSessionStartPerIp;
  const buckets = new TokenBuckets(() => clock.now());
  const limited = new Counter({ name: 'http_rate_limited_total', help: 'Requests refused with 429 by bucket kind', labelNames: ['bucket'], registers: deps.metrics ? [deps.metrics] : [] });

  const hook = async function rateLimitHook(request: FastifyRequest): Promise<void> {
    const route = request.routeOptions;
    if (!route.url) return; // unknown path: the 404 handler answers
    const wants: Array<{ key: string; rate: number; kind: string }> = [];
    if (perIp > 0 && (route.config?.rateLimit === 'sessionStart' || isSessionStartRoute(request.method, route.url))) {
      wants.push({ key: `ip:${request.ip}`, rate: perIp, kind: 'ip' });
    }
    const credential = perCredential > 0 ? credentialKey(request) : undefined;
    if (credential) wants.push({ key: `cred:${credential}`, rate: perCredential, kind: 'credential' });
    const spaceId = perSpace > 0 && request.actor ? request.space?.id : undefined;
    if (spaceId) wants.push({ key: `space:${spaceId}`, rate: perSpace, kind: 'space' });
    if (!wants.length) return;
    const { wait, empty } = buckets.take(wants);
    if (wait > 0) {
      limited.inc({ bucket: wants[empty ?? 0]!.kind });
      throw errors.tooManyRequests(wait);
    }
  };
  return Object.assign(hook, { buckets });
}
