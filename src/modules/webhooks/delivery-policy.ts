import { createHmac } from 'node:crypto';

/** Delays after each failed attempt (webhooks.md §4.3): 17 retries over about a day. */
export const RETRY_DELAYS_MS: readonly number[] = [
  5e3, 5e3, 30e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 14400e3, 14400e3, 14400e3, 14400e3, 14400e3,
];

/**
 * Delay before the next attempt after `failedAttempts` failures (1-based), with ±10 % jitter;
 * undefined once the schedule is exhausted (dead-letter).
 */
export function retryDelayMs(failedAttempts: number, schedule: readonly number[] = RETRY_DELAYS_MS, random: () => number = Math.random): number | undefined {
  const base = schedule[failedAttempts - 1];
  if (base === undefined) return undefined;
  return Math.round(base * (0.9 + 0.2 * random()));
}

export type Outcome = 'succeeded' | 'dropped' | 'retry';

/** 2xx delivered; 400 dropped (never retried); anything else, including 3xx and 401, retried. */
export function outcomeOf(status: number | undefined): Outcome {
  if (status !== undefined && status >= 200 && status < 300) return 'succeeded';
  if (status === 400) return 'dropped';
  return 'retry';
}

/**
 * Request headers for one attempt (webhooks.md §4.2). `secrets` are the HMAC keys (current first,
 * then a recently replaced one during rotation); the body bytes are the bytes sent.
 */
export function deliveryHeaders(input: { deliveryId: string; attempt: number; timestampSec: number; body: Buffer; secrets: readonly string[] }): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    'user-agent': 'Switchboard-Webhooks/1.0',
    'webhook-id': input.deliveryId,
    'webhook-timestamp': String(input.timestampSec),
    'x-switchboard-attempt': String(input.attempt),
  };
  const [current] = input.secrets;
  if (current !== undefined) {
    headers['x-comapi-signature'] = createHmac('sha1', current).update(input.body).digest('hex');
    headers['webhook-signature'] = input.secrets
      .map((s) => `v1,${createHmac('sha256', s).update(`${input.deliveryId}.${input.timestampSec}.`).update(input.body).digest('base64')}`)
      .join(' ');
  }
  return headers;
}
