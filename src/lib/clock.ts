/** Time source injected wherever the server schedules, expires or stamps things. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  constructor(private t = Date.UTC(2024, 4, 1, 9, 0, 0)) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  set(ms: number): void {
    this.t = ms;
  }
}

/** ISO 8601 UTC with milliseconds and `Z` (conventions.md §6). */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * Parses an RFC 3339 date-time (with `Z` or an offset) to epoch ms; returns undefined for
 * date-only strings, times without a zone, and anything unparsable.
 */
export function parseDateTime(value: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})$/.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}
