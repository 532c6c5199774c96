/**
 * Secret settings (channels.md §1.3): write-only values named by dot paths in the provider's
 * `secretSettings`. Stored sealed apart from the other settings, shown as `********`; a PUT that
 * sends `********` keeps the stored value.
 */
export const MASK = '********';

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function getPath(root: Record<string, unknown>, path: string): unknown {
  let cur: unknown = root;
  for (const k of path.split('.')) {
    if (!isObj(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

export function setPath(root: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let cur = root;
  for (const k of keys.slice(0, -1)) {
    if (!isObj(cur[k])) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys[keys.length - 1]!] = value;
}

function deletePath(root: Record<string, unknown>, path: string): void {
  const keys = path.split('.');
  let cur: unknown = root;
  for (const k of keys.slice(0, -1)) {
    if (!isObj(cur)) return;
    cur = cur[k];
  }
  if (isObj(cur)) delete cur[keys[keys.length - 1]!];
}

const clone = (v: Record<string, unknown>): Record<string, unknown> => JSON.parse(JSON.stringify(v));

/**
 * Resolves `********` placeholders against the stored secrets. Returns the full plaintext settings
 * and the paths whose placeholder had nothing to keep.
 */
export function resolveMasked(input: Record<string, unknown>, secretPaths: readonly string[], stored: Record<string, unknown>): { settings: Record<string, unknown>; missing: string[] } {
  const settings = clone(input);
  const missing: string[] = [];
  for (const path of secretPaths) {
    if (getPath(settings, path) !== MASK) continue;
    if (stored[path] === undefined) missing.push(path);
    else setPath(settings, path, stored[path]);
  }
  return { settings, missing };
}

/** Splits plaintext settings into the public part and the secret values by path. */
export function splitSecrets(settings: Record<string, unknown>, secretPaths: readonly string[]): { open: Record<string, unknown>; secrets: Record<string, unknown> } {
  const open = clone(settings);
  const secrets: Record<string, unknown> = {};
  for (const path of secretPaths) {
    const v = getPath(open, path);
    if (v === undefined) continue;
    secrets[path] = v;
    deletePath(open, path);
  }
  return { open, secrets };
}

/** Public settings with each stored secret shown as `********`. */
export function maskedView(open: Record<string, unknown>, secretPaths: Iterable<string>): Record<string, unknown> {
  const out = clone(open);
  for (const path of secretPaths) setPath(out, path, MASK);
  return out;
}

/** Public settings with the secrets put back (what adapters are built from). */
export function mergeSecrets(open: Record<string, unknown>, secrets: Record<string, unknown>): Record<string, unknown> {
  const out = clone(open);
  for (const [path, v] of Object.entries(secrets)) setPath(out, path, v);
  return out;
}

