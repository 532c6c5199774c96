import { accountsModule } from '../../src/modules/accounts/index.js';
import { spacesModule } from '../../src/modules/spaces/index.js';
import { profilesModule } from '../../src/modules/profiles/index.js';
import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { StartOptions, TestServer } from '../helpers/harness.js';

/** Profiles suites run with the modules they depend on only (other groups evolve separately). */
export const profileModules: StartOptions = { modules: [accountsModule, spacesModule, profilesModule] };

export const json = { 'content-type': 'application/json' };

/**
 * Query suites: a first test seeds `people` into a fresh space with a bulk upsert; `query(qs)`
 * runs GET /profiles?qs there and returns the ids listed and the X-Total-Count header.
 */
export function seededQueries(s: () => TestServer, people: readonly unknown[]) {
  let space = '';
  it('seeds', async () => {
    space = await s().createSpace();
    const res = await s().request({ method: 'PATCH', url: `/apispaces/${space}/profiles/bulk`, payload: people });
    assert.equal(res.statusCode, 200, res.body);
    assert.ok(res.json().every((r: { result: string }) => r.result === 'created'));
  });
  const query = async (qs: string): Promise<{ list: string[]; total: unknown }> => {
    const res = await s().request({ method: 'GET', url: `/apispaces/${space}/profiles?${qs}` });
    assert.equal(res.statusCode, 200, `${qs}: ${res.body}`);
    return { list: res.json().map((p: { id: string }) => p.id), total: res.headers['x-total-count'] };
  };
  return { space: () => space, query };
}
