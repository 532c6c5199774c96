/** FNV-1a of `key`, modulo `n`: the lane an item goes to. */
export function laneOf(key: string, n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return (h >>> 0) % n;
}

/**
 * Runs `run` on up to `lanes` parts of `items` at once, split by `key`: every item with the same
 * key goes to one part, in input order, so items that build on each other still apply in turn.
 * `run` answers one result per item of its part. A part whose run rejects is answered by
 * `failed(err, part)` (which may rethrow); when every part rejects, the first error is thrown,
 * as it would be with one part.
 */
export async function inLanes<T, R>(
  items: readonly T[],
  lanes: number,
  key: (item: T) => string,
  run: (part: T[]) => Promise<R[]>,
  failed: (err: unknown, part: T[]) => R[],
): Promise<Array<{ part: T[]; results: R[] }>> {
  if (!items.length) return [];
  if (lanes <= 1) {
    const part = [...items];
    return [{ part, results: await run(part) }];
  }
  const split: T[][] = Array.from({ length: lanes }, () => []);
  for (const item of items) split[laneOf(key(item), lanes)]!.push(item);
  const parts = split.filter((p) => p.length);
  const settled = await Promise.allSettled(parts.map(run));
  if (settled.every((s) => s.status === 'rejected')) throw (settled[0] as PromiseRejectedResult).reason;
  return parts.map((part, i) => {
    const s = settled[i]!;
    return { part, results: s.status === 'fulfilled' ? s.value : failed(s.reason, part) };
  });
}
