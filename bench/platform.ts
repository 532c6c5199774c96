/**
 * Platform overhead: authenticated `GET /apispaces/{id}` (access token with `apis:ro`: JWT check,
 * revocation check, space lookup, ETag) against a bare Fastify route returning the same JSON, in
 * the same run. Prints both rates and the ratio.
 *
 *   npm run bench -- platform          BENCH_DURATION_MS=5000 BENCH_CONNECTIONS=32 npm run bench -- platform
 */
import { pathToFileURL } from 'node:url';
import { compare, http, loadInterleaved, startBaseline, startSwitchboard } from './lib/index.js';

export async function run(): Promise<void> {
  const sb = await startSwitchboard();
  let baseline: Awaited<ReturnType<typeof startBaseline>> | undefined;
  try {
    const admin = { authorization: `Bearer ${sb.adminToken}` };
    const space = await http('POST', `${sb.url}/apispaces`, { headers: admin, body: { name: 'bench' } });
    if (space.status !== 201) throw new Error(`create space: ${space.status} ${space.text}`);
    const id = space.json().id as string;
    const token = await http('POST', `${sb.url}/apispaces/${id}/accesstokens`, { headers: admin, body: { name: 'bench', profileId: 'bench', permissions: ['apis:ro'] } });
    if (token.status !== 201) throw new Error(`create token: ${token.status} ${token.text}`);
    const headers = { authorization: `Bearer ${token.json().token}` };
    const sample = await http('GET', `${sb.url}/apispaces/${id}`, { headers });
    if (sample.status !== 200) throw new Error(`get space: ${sample.status} ${sample.text}`);
    baseline = await startBaseline([{ method: 'GET', path: '/apispaces/:id', body: sample.json() }]);
    const path = `/apispaces/${id}`;
    const [switchboard, bare] = await loadInterleaved([{ url: sb.url + path, headers }, { url: baseline.url + path, headers }]);
    compare('GET /apispaces/{id} with an access token (apis:ro)', [['switchboard', switchboard], ['bare fastify', bare]]);
    if (switchboard.errors) console.log(`  switchboard statuses: ${JSON.stringify(switchboard.statuses)}`);
  } finally {
    await baseline?.stop();
    await sb.stop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await run();
