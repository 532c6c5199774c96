import { it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { profileModules } from './helpers.js';

eachDatabase('profiles: bulk, paging, opt-in, relationships, audiences, devices, export', (dialect) => {
  const s = useServer(dialect, profileModules);
  let space = '';
  const url = (p = '') => `/apispaces/${space}/profiles${p}`;

  it('bulk-upserts 2,000 profiles and pages through them with X-Total-Count', async () => {
    space = await s().createSpace();
    for (let b = 0; b < 2; b++) {
      const items = Array.from({ length: 1000 }, (_, i) => ({ id: `p${String(b * 1000 + i).padStart(4, '0')}`, n: b * 1000 + i, tier: i % 2 ? 'gold' : 'silver' }));
      const res = await s().request({ method: 'PATCH', url: url('/bulk'), payload: items });
      assert.equal(res.statusCode, 200);
      assert.equal(res.json().filter((r: { result: string }) => r.result === 'created').length, 1000);
    }
    const mixed = await s().request({ method: 'PATCH', url: url('/bulk'), payload: [{ id: 'p0000', extra: true }, { name: 'no id' }, { id: 'p9999', phoneNumber: 'abc' }, 'x'] });
    assert.deepEqual(mixed.json().map((r: { result: string }) => r.result), ['updated', 'failed', 'failed', 'failed']);
    assert.equal(mixed.json()[1].index, 1);
    assert.equal((await s().request({ method: 'PATCH', url: url('/bulk'), payload: Array.from({ length: 1001 }, (_, i) => ({ id: `x${i}` })) })).statusCode, 400);
    assert.equal((await s().request({ method: 'PATCH', url: url('/bulk'), payload: { id: 'x' } })).statusCode, 400);

    const seen = new Set<string>();
    for (let skip = 0; skip < 2000; skip += 700) {
      const page = await s().request({ method: 'GET', url: url(`?$limit=700&$skip=${skip}`) });
      assert.equal(page.headers['x-total-count'], '2000');
      for (const p of page.json()) seen.add(p.id);
    }
    assert.equal(seen.size, 2000);
    const gold = await s().request({ method: 'GET', url: url('?tier=gold&n=>=1990&$sort=-n') });
    assert.equal(gold.headers['x-total-count'], '5');
    assert.deepEqual(gold.json().map((p: { n: number }) => p.n), [1999, 1997, 1995, 1993, 1991]);
    const def = await s().request({ method: 'GET', url: url() });
    assert.equal(def.json().length, 100);

    const del = await s().request({ method: 'DELETE', url: url('/bulk?id=p0000,p0001&id=nobody') });
    assert.deepEqual(del.json(), [{ id: 'p0000', result: 'deleted' }, { id: 'p0001', result: 'deleted' }, { id: 'nobody', result: 'notFound' }]);
    assert.equal((await s().request({ method: 'GET', url: url('?$limit=1') })).headers['x-total-count'], '1998');
    assert.equal((await s().request({ method: 'GET', url: url('?$limit=1&$includeDeleted=true') })).headers['x-total-count'], '2000');
  });

  it('applies a 1,000-item bulk with repeated ids in order, each occurrence on top of the one before', async () => {
    // 400 ids, most of them more than once, spread through the request (on PostgreSQL the items
    // are written by two transactions at once, split by id).
    const own = await s().createSpace();
    const at = (p = '') => `/apispaces/${own}/profiles${p}`;
    const items = Array.from({ length: 1000 }, (_, i) => ({ id: `r${i % 400}`, [`f${Math.floor(i / 400)}`]: i, last: i }));
    const res = await s().request({ method: 'PATCH', url: at('/bulk'), payload: items });
    assert.equal(res.statusCode, 200);
    const results = res.json() as Array<{ id: string; result: string }>;
    assert.deepEqual(results.map((r) => r.id), items.map((it) => it.id));
    assert.deepEqual(results.map((r) => r.result), items.map((_, i) => (i < 400 ? 'created' : 'updated')));
    for (const id of ['r0', 'r199', 'r399']) {
      const n = Number(id.slice(1));
      const got = await s().request({ method: 'GET', url: at(`/${id}`) });
      const doc = got.json();
      assert.equal(doc.f0, n);
      assert.equal(doc.f1, n + 400);
      assert.equal(doc.last, n < 200 ? n + 800 : n + 400);
      assert.equal(doc.f2, n < 200 ? n + 800 : undefined);
      assert.equal(got.headers.etag !== undefined, true);
    }
    assert.equal((await s().request({ method: 'GET', url: at('?$limit=1&id=^r') })).headers['x-total-count'], '400');
  });

  it('answers bulks after one that created profiles as it does after any other', async () => {
    // On PostgreSQL a batch that follows one that created profiles only is first tried as if none
    // of its ids existed (writer `applyMany`): inserted at once when they are all free, rolled back
    // and read first when one is taken. The answers must not tell the difference.
    const own = await s().createSpace();
    const at = (p = '') => `/apispaces/${own}/profiles${p}`;
    const bulk = async (items: Array<Record<string, unknown>>) => {
      const res = await s().request({ method: 'PATCH', url: at('/bulk'), payload: items });
      assert.equal(res.statusCode, 200);
      return res.json() as Array<{ id: string; result: string; message?: string }>;
    };
    const doc = async (id: string) => (await s().request({ method: 'GET', url: at(`/${id}`) })).json();
    const seed = await bulk(Array.from({ length: 300 }, (_, i) => ({ id: `m${i}`, city: 'Leeds', n: i })));
    assert.ok(seed.every((r) => r.result === 'created'));
    assert.equal((await s().request({ method: 'DELETE', url: at('/m5') })).statusCode, 204);

    // New ids only (one repeated, one first failing): inserted without a read.
    const fresh = await bulk([{ id: 'k1', phoneNumber: 'abc' }, { id: 'k1', tier: 'gold' }, { id: 'k2', x: 1 }, { id: 'k2', y: 2 }, ...Array.from({ length: 250 }, (_, i) => ({ id: `z${i}`, i }))]);
    assert.deepEqual(fresh.slice(0, 4).map((r) => r.result), ['failed', 'created', 'created', 'updated']);
    assert.match(fresh[0]!.message!, /phoneNumber/);
    assert.ok(fresh.slice(4).every((r) => r.result === 'created'));
    assert.deepEqual([(await doc('k1')).tier, (await doc('k1')).phoneNumber, (await doc('k2')).x, (await doc('k2')).y], ['gold', undefined, 1, 2]);

    // Mostly new ids, a few taken (one of them deleted): the insert is rolled back, the batch read first.
    const mixed = await bulk([
      { id: 'n1', phoneNumber: 'abc' }, { id: 'n1', tier: 'gold' },
      { id: 'm1', a: 1 }, { id: 'm1', b: 2 },
      { id: 'm5', a: 1 },
      { id: 'n2', x: 1 }, { id: 'n2', y: 2 },
      ...Array.from({ length: 250 }, (_, i) => ({ id: `y${i}`, i })),
    ]);
    assert.deepEqual(mixed.slice(0, 7).map((r) => [r.id, r.result]), [
      ['n1', 'failed'], ['n1', 'created'], ['m1', 'updated'], ['m1', 'updated'], ['m5', 'failed'], ['n2', 'created'], ['n2', 'updated'],
    ]);
    assert.match(mixed[4]!.message!, /deleted/);
    assert.ok(mixed.slice(7).every((r) => r.result === 'created'));
    assert.deepEqual([(await doc('m1')).city, (await doc('m1')).n, (await doc('m1')).a, (await doc('m1')).b], ['Leeds', 1, 1, 2]);
    assert.deepEqual([(await doc('n1')).tier, (await doc('n2')).x, (await doc('n2')).y, (await doc('y7')).i], ['gold', 1, 2, 7]);

    // Each profile's events in the order of its items, revisions counting up; none for the rolled-back insert.
    const events = await s().container.platform.db.selectFrom('events').select(['name', 'meta']).where('api_space_id', '=', own).orderBy('id').execute();
    const of = (id: string) => events.map((e) => ({ name: e.name, meta: JSON.parse(String(e.meta)) as { profileId: string; revision: number } })).filter((e) => e.meta.profileId === id).map((e) => [e.name, e.meta.revision]);
    assert.deepEqual(of('k2'), [['profile.create', 0], ['profile.update', 1]]);
    assert.deepEqual(of('n2'), [['profile.create', 0], ['profile.update', 1]]);
    assert.deepEqual(of('m1'), [['profile.create', 0], ['profile.update', 1], ['profile.update', 2]]);
    assert.equal(events.filter((e) => e.name === 'profile.create').length, 300 + 252 + 252);

    // Existing ids right after: all updated, and queries see every profile once.
    const again = await bulk(Array.from({ length: 250 }, (_, i) => ({ id: `z${i}`, seen: true })));
    assert.ok(again.every((r) => r.result === 'updated'));
    assert.deepEqual([(await doc('z7')).seen, (await doc('z7')).i], [true, 7]);
    assert.equal((await s().request({ method: 'GET', url: at('?$limit=1&i=7') })).headers['x-total-count'], '2');
    assert.equal((await s().request({ method: 'GET', url: at('?$limit=1') })).headers['x-total-count'], String(299 + 252 + 252));
  });

  it('answers two bulks creating the same profiles at once, in opposite orders, as stored', async () => {
    const own = await s().createSpace();
    const at = (p = '') => `/apispaces/${own}/profiles${p}`;
    // A first batch of new profiles (on PostgreSQL the next ones then insert before reading).
    await s().request({ method: 'PATCH', url: at('/bulk'), payload: Array.from({ length: 300 }, (_, i) => ({ id: `seed${i}` })) });
    for (let round = 0; round < 4; round++) {
      const ids = Array.from({ length: 400 }, (_, i) => `c${round}-${String(i).padStart(3, '0')}`);
      const [a, b] = await Promise.all([
        s().request({ method: 'PATCH', url: at('/bulk'), payload: ids.map((id) => ({ id, a: 1 })) }),
        s().request({ method: 'PATCH', url: at('/bulk'), payload: [...ids].reverse().map((id) => ({ id, b: 2 })) }),
      ]);
      // Each request's items are written by two transactions (split by id); a transaction that
      // loses a race answers its items failed, and when both lose, the request answers 409.
      const applied = (res: typeof a) => {
        if (res.statusCode === 409) return new Set<string>();
        assert.equal(res.statusCode, 200, res.body);
        const results = res.json() as Array<{ id: string; result: string; message?: string }>;
        for (const r of results) if (r.result === 'failed') assert.match(r.message!, /at the same time/);
        return new Set(results.filter((r) => r.result !== 'failed').map((r) => r.id));
      };
      const [byA, byB] = [applied(a), applied(b)];
      assert.ok(byA.size + byB.size >= ids.length, `round ${round}: ${byA.size} + ${byB.size} applied`);
      for (const id of [ids[0]!, ids[137]!, ids[262]!, ids[399]!]) {
        const got = await s().request({ method: 'GET', url: at(`/${id}`) });
        const doc = got.statusCode === 200 ? got.json() : {};
        assert.equal(doc.a === 1, byA.has(id), `${id} a`);
        assert.equal(doc.b === 2, byB.has(id), `${id} b`);
      }
    }
  });

  it('opts in and out per channel, with space defaults', async () => {
    await s().request({ method: 'POST', url: url(), payload: { id: 'ann' } });
    assert.equal((await s().request({ method: 'GET', url: url('/optin') })).json().sms, true);
    const put = await s().request({ method: 'PUT', url: url('/optin'), payload: { sms: false } });
    assert.equal(put.statusCode, 200);
    assert.equal(put.json().sms, false);
    assert.equal(put.json().email, true);
    assert.equal((await s().request({ method: 'PUT', url: url('/optin'), payload: { carrierPigeon: true } })).statusCode, 400);
    assert.equal((await s().request({ method: 'PUT', url: url('/optin'), payload: { sms: 'yes' } })).statusCode, 400);
    const dir = s().container.services.profiles;
    assert.equal(await dir.isOptedIn(space, 'ann', 'sms'), false);
    const inn = await s().request({ method: 'PUT', url: url('/ann/optin'), payload: { channels: ['sms', 'email'] } });
    assert.equal(inn.statusCode, 200);
    assert.deepEqual(inn.json()._optIn, { sms: true, email: true });
    assert.ok(inn.headers.etag);
    assert.equal(await dir.isOptedIn(space, 'ann', 'sms'), true);
    assert.equal((await s().request({ method: 'PUT', url: url('/ann/optin'), payload: { channels: [] } })).statusCode, 400);
    assert.equal((await s().request({ method: 'PUT', url: url('/ann/optin'), payload: { channels: ['nope'] } })).statusCode, 400);
    assert.equal((await s().request({ method: 'PUT', url: url('/ghost/optin'), payload: { channels: ['sms'] } })).statusCode, 404);
    const out = await s().request({ method: 'DELETE', url: url('/ann/optin?channel=email') });
    assert.deepEqual(out.json()._optIn, { sms: true, email: false });
    const all = await s().request({ method: 'DELETE', url: url('/ann/optin') });
    assert.equal(all.json()._optIn.appMessaging, false);
    assert.equal(all.json()._optIn.sms, false);
  });

  it('links profiles following the relationship rules', async () => {
    for (const id of ['prim', 'kid1', 'kid2', 'other']) await s().request({ method: 'POST', url: url(), payload: { id, email: `${id}@example.com` } });
    const self = await s().request({ method: 'PUT', url: url('/prim/rels/link/prim') });
    assert.equal(self.statusCode, 400);
    const link = await s().request({ method: 'PUT', url: url('/prim/rels/link/kid1') });
    assert.equal(link.statusCode, 200);
    assert.deepEqual(link.json()._rels, { links: ['kid1'] });
    const asPrimary = await s().request({ method: 'PUT', url: url('/kid2/rels/primary/prim') });
    assert.deepEqual(asPrimary.json()._rels, { primary: 'prim' });
    assert.deepEqual(await s().container.services.profiles.childrenOf(space, 'prim'), ['kid1', 'kid2']);
    // A child cannot become a primary; a primary cannot become a child.
    const childAsPrimary = await s().request({ method: 'PUT', url: url('/other/rels/primary/kid1') });
    assert.equal(childAsPrimary.statusCode, 409);
    assert.equal(childAsPrimary.json().code, 'InvalidState');
    const primaryAsChild = await s().request({ method: 'PUT', url: url('/other/rels/link/prim') });
    assert.equal(primaryAsChild.statusCode, 409);
    // Re-linking a child to a new primary replaces the old link.
    const moved = await s().request({ method: 'PUT', url: url('/other/rels/link/kid2') });
    assert.equal(moved.statusCode, 200);
    assert.deepEqual((await s().request({ method: 'GET', url: url('/prim') })).json()._rels, { links: ['kid1'] });
    const resolved = await s().container.services.profiles.resolveForMessaging(space, 'kid2');
    assert.equal(resolved?.primary?.id, 'other');
    assert.equal((await s().request({ method: 'DELETE', url: url('/kid1/rels/primary/other') })).statusCode, 404);
    const unlink = await s().request({ method: 'DELETE', url: url('/prim/rels/link/kid1') });
    assert.equal(unlink.statusCode, 200);
    assert.equal(unlink.json()._rels, undefined);
    assert.equal((await s().request({ method: 'PUT', url: url('/prim/rels/link/ghost') })).statusCode, 404);
  });

  it('saves audiences and evaluates their members', async () => {
    const base = `/apispaces/${space}/audiences`;
    const bad = await s().request({ method: 'POST', url: base, payload: { name: 'Bad', query: '$limit=5' } });
    assert.equal(bad.statusCode, 400);
    const created = await s().request({ method: 'POST', url: base, payload: { name: 'Gold late', query: 'tier=gold&n=>=1900' } });
    assert.equal(created.statusCode, 201, created.body);
    const aud = created.json();
    assert.equal((await s().request({ method: 'POST', url: base, payload: { name: 'Gold late', query: 'a=1' } })).statusCode, 409);
    const members = await s().request({ method: 'GET', url: `${base}/${aud.id}/profiles?$limit=10&$fields=n` });
    assert.equal(members.statusCode, 200);
    assert.equal(members.headers['x-total-count'], '50');
    assert.equal(members.json().length, 10);
    assert.deepEqual(Object.keys(members.json()[0]).sort(), ['id', 'n']);
    const counted = await s().request({ method: 'GET', url: `${base}/${aud.id}?includeCount=true` });
    assert.equal(counted.json().profileCount, 50);
    const stale = await s().request({ method: 'PUT', url: `${base}/${aud.id}`, headers: { 'if-match': '"9-xxxxxxxxxxxxxxxx"' }, payload: { name: 'G', query: 'tier=gold' } });
    assert.equal(stale.statusCode, 412);
    const put = await s().request({ method: 'PUT', url: `${base}/${aud.id}`, headers: { 'if-match': created.headers.etag as string }, payload: { name: 'G', query: 'tier=gold' } });
    assert.equal(put.statusCode, 200);
    assert.equal((await s().request({ method: 'GET', url: `${base}/${aud.id}/profiles?$limit=1` })).headers['x-total-count'], '999');
    const list = await s().request({ method: 'GET', url: base });
    assert.equal(list.json().length, 1);
    const noProf = await s().createToken(space, ['aud:r']);
    assert.equal((await s().request({ method: 'GET', url: `${base}/${aud.id}/profiles`, token: noProf })).statusCode, 403);
    assert.equal((await s().request({ method: 'DELETE', url: `${base}/${aud.id}` })).statusCode, 204);
    assert.equal((await s().request({ method: 'GET', url: `${base}/${aud.id}` })).statusCode, 404);
  });

  it('stores devices, validates push and removes a device', async () => {
    const dir = s().container.services.profiles;
    const removed: string[] = [];
    dir.onDeviceRemoved(async (_sp, pid, did) => void removed.push(`${pid}/${did}`));
    await dir.upsertDevice(space, 'ann', { deviceId: 'd1', platform: 'javascript', push: { fcm: { package: 'com.example.app', registrationId: 'r' } } }, 'system');
    await dir.upsertDevice(space, 'ann', { deviceId: 'd2', push: { apns: { bundleId: 'com.example.app', environment: 'production', token: 't' } } }, 'system');
    await dir.upsertDevice(space, 'ann', { deviceId: 'd3' }, 'system');
    const v = await s().request({ method: 'POST', url: url('/devices/push/validation'), payload: { ids: ['ann', 'bob'] } });
    assert.deepEqual(v.json(), [
      { id: 'ann', pushDevicesCount: 2, fcm: ['com.example.app'], apns: ['com.example.app.production'] },
      { id: 'bob', pushDevicesCount: 0, fcm: [], apns: [] },
    ]);
    const withDevices = await s().request({ method: 'GET', url: url('?id=ann&$includeDevices=true') });
    assert.equal(withDevices.json()[0]._devices.length, 3);
    assert.equal((await s().request({ method: 'DELETE', url: url('/ann/devices/d9') })).statusCode, 404);
    assert.equal((await s().request({ method: 'DELETE', url: url('/ann/devices/d1') })).statusCode, 204);
    assert.deepEqual(removed, ['ann/d1']);
    assert.equal((await dir.devices(space, 'ann')).length, 2);
  });

  it('exports JSON and CSV by streaming', async () => {
    const json = await s().request({ method: 'POST', url: url('/export?query=tier%3Dgold%26n%3D%3E%3D1990') });
    assert.equal(json.statusCode, 200, json.body);
    assert.match(String(json.headers['content-disposition']), /^attachment; filename="profiles-\d{8}T\d{6}Z\.json"$/);
    assert.deepEqual(json.json().map((p: { id: string }) => p.id), ['p1991', 'p1993', 'p1995', 'p1997', 'p1999']);
    const csv = await s().request({ method: 'POST', url: url('/export?query=id%3Dp1991'), payload: { format: 'csv' } });
    assert.equal(csv.headers['content-type'], 'text/csv; charset=utf-8');
    assert.equal(csv.body, 'id,n,tier\r\np1991,1991,gold\r\n');
    await s().request({ method: 'PATCH', url: url('/p1993'), payload: { note: 'a;"b"', address: { line1: 'x' } } });
    const fields = await s().request({ method: 'POST', url: url('/export?query=id%3Dp1993'), payload: { format: 'csv', fields: ['id', 'note', 'address', 'address.line1'], fieldSeparator: ';', includeHeaders: false } });
    assert.equal(fields.body, 'p1993;"a;""b""";--INVALID-TYPE--;x\r\n');
    assert.equal((await s().request({ method: 'POST', url: url('/export'), payload: { format: 'xml' } })).statusCode, 400);
    const all = await s().request({ method: 'POST', url: url('/export'), payload: { format: 'json' } });
    assert.equal(all.json().length, 1998 + 5);
    // The spliced JSON equals the API's document.
    const one = all.json().find((p: { id: string }) => p.id === 'p1993');
    assert.deepEqual(one, (await s().request({ method: 'GET', url: url('/p1993') })).json());
    const ann = all.json().find((p: { id: string }) => p.id === 'ann');
    assert.deepEqual(ann, (await s().request({ method: 'GET', url: url('/ann') })).json());
  });
});
