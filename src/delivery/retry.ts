/**
 * Exponential back-off with full jitter in [base·2^(n-1)/2, base·2^(n-1)], capped.
 * `attempt` is 1 for the first retry.
 */
export function backoffMs(attempt: number, baseMs = 1000, capMs = 3_600_000, random: () => number = Math.random): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}
