import { filterValue, typesCovered, type WebhookEnvelope } from '../../events/catalogue.js';
import type { ValidationFailure } from '../../http/errors.js';

export interface Subscription {
  type: string;
  filters: Array<{ name: string; value: string }>;
}

/**
 * Validates subscriptions (webhooks.md §2): each `type` a known event or `<family>.*` of a known
 * family; each filter offered by at least one covered type. Returns the normalised list.
 */
export function normaliseSubscriptions(input: ReadonlyArray<{ type: string; filters?: ReadonlyArray<{ name: string; value: unknown }> }>, failures: ValidationFailure[]): Subscription[] {
  return input.map((sub, i) => {
    const covered = typesCovered(sub.type);
    if (!covered.length) failures.push({ paramName: `subscriptions[${i}].type`, message: `Unknown event type "${sub.type}"; use a name from GET /webhooks/availableevents or <family>.*` });
    const filters = (sub.filters ?? []).map((flt, j) => {
      if (covered.length && !covered.some((t) => t.filters.some((x) => x.name === flt.name))) {
        const offered = [...new Set(covered.flatMap((t) => t.filters.map((x) => x.name)))];
        failures.push({ paramName: `subscriptions[${i}].filters[${j}].name`, message: offered.length ? `Filter "${flt.name}" is not offered for ${sub.type}; offered: ${offered.join(', ')}` : `${sub.type} offers no filters` });
      }
      return { name: flt.name, value: String(flt.value) };
    });
    return { type: sub.type, filters };
  });
}

function covers(type: string, name: string): boolean {
  return type === name || (type.endsWith('.*') && name.startsWith(type.slice(0, -1)));
}

/**
 * Whether any subscription takes the event (webhooks.md §3): filters with different names must
 * all match; several with one name match when any does; exact, case-sensitive string comparison.
 */
export function matches(subscriptions: readonly Subscription[], envelope: WebhookEnvelope): boolean {
  return subscriptions.some((sub) => {
    if (!covers(sub.type, envelope.name)) return false;
    const byName = new Map<string, string[]>();
    for (const f of sub.filters) byName.set(f.name, [...(byName.get(f.name) ?? []), f.value]);
    for (const [name, values] of byName) {
      const actual = filterValue(envelope, name);
      if (actual === undefined || !values.includes(actual)) return false;
    }
    return true;
  });
}
