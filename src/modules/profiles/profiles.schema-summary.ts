/** The `$schemaOnly=true` summary (profiles.md §2.4) built from a sample of profile data. */
export interface PropertySummary {
  name: string;
  path: string;
  probability: number;
  types: Array<{ name: string; probability: number; examples: unknown[] }>;
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

function typeName(v: unknown): string {
  if (v === null) return 'Null';
  if (Array.isArray(v)) return 'Array';
  switch (typeof v) {
    case 'number': return 'Number';
    case 'boolean': return 'Boolean';
    case 'string': return DATE_TIME.test(v) && !Number.isNaN(Date.parse(v)) ? 'DateTime' : 'String';
    default: return 'Object';
  }
}

const round = (x: number) => Math.round(x * 10000) / 10000;

export function schemaSummary(sample: ReadonlyArray<Record<string, unknown>>): PropertySummary[] {
  const paths = new Map<string, { count: number; types: Map<string, { count: number; examples: unknown[] }> }>();
  const visit = (obj: Record<string, unknown>, prefix: string, seen: Set<string>) => {
    for (const [k, v] of Object.entries(obj)) {
      const path = prefix ? `${prefix}.${k}` : k;
      const entry = paths.get(path) ?? { count: 0, types: new Map() };
      paths.set(path, entry);
      if (!seen.has(path)) {
        seen.add(path);
        entry.count++;
      }
      const name = typeName(v);
      const t = entry.types.get(name) ?? { count: 0, examples: [] };
      entry.types.set(name, t);
      t.count++;
      if (name !== 'Object' && name !== 'Array' && t.examples.length < 3 && !t.examples.includes(v)) t.examples.push(v);
      if (name === 'Object') visit(v as Record<string, unknown>, path, seen);
    }
  };
  for (const doc of sample) visit(doc, '', new Set());
  const total = sample.length || 1;
  return [...paths.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([path, e]) => {
    const values = [...e.types.values()].reduce((n, t) => n + t.count, 0) || 1;
    return {
      name: path.split('.').pop()!,
      path,
      probability: round(e.count / total),
      types: [...e.types.entries()].map(([name, t]) => ({ name, probability: round(t.count / values), examples: t.examples })),
    };
  });
}
