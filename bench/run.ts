/**
 * `npm run bench [filter…]`: runs every bench/*.ts whose file name contains one of the filters (all
 * without a filter). Files exporting `run(args)` are imported and called with the remaining
 * arguments; other files are started as child processes (`node --import tsx bench/<file>`).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';

const dir = fileURLToPath(new URL('.', import.meta.url));
const args = process.argv.slice(2);
const filters = args.filter((a) => !a.startsWith('-'));
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (!files.length) {
  console.error(`no benchmark matches ${filters.join(', ')}`);
  process.exit(1);
}
let failed = 0;
for (const file of files) {
  const path = join(dir, file);
  console.log(`\n=== ${file}`);
  const started = performance.now();
  try {
    if (/export\s+(async\s+)?function\s+run\b|export\s+const\s+run\b/.test(readFileSync(path, 'utf8'))) {
      const mod = (await import(pathToFileURL(path).href)) as { run(args: string[]): Promise<void> };
      await mod.run(args);
    } else {
      const res = spawnSync(process.execPath, ['--import', 'tsx', path, ...args], { stdio: 'inherit' });
      if (res.status !== 0) throw new Error(`exited with ${res.status}`);
    }
    console.log(`=== ${file} done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } catch (err) {
    failed++;
    console.error(`=== ${file} failed: ${err instanceof Error ? err.stack : err}`);
  }
}
process.exit(failed ? 1 : 0);
