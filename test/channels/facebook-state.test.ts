import { before, it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { configureAuth, startSession } from '../appmessaging/helpers.js';
import { createFacebookStates } from '../../src/modules/channels/facebook-state.js';
import { createSecretBox } from '../../src/lib/secrets.js';

it('a state decodes only with the installation key that made it, and for 90 days', () => {
  let now = Date.UTC(2026, 0, 1);
  const states = createFacebookStates(createSecretBox('installation-a'), () => now);
  const text = states.encode({ apiSpaceId: 'a5c3c2b1-0000-4000-8000-000000000001', profileId: 'dana@example.com', data: '{"tier":"gold"}' })!;
  assert.match(text, /^[0-9a-f]{24}[A-Za-z0-9+/]+={0,2}$/);
  assert.ok(text.length <= 250);
  assert.deepEqual(states.decode(text), { apiSpaceId: 'a5c3c2b1-0000-4000-8000-000000000001', profileId: 'dana@example.com', data: '{"tier":"gold"}', iat: now / 1000 });
  assert.equal(createFacebookStates(createSecretBox('installation-b'), () => now).decode(text), undefined);
  assert.equal(states.decode(`${text.slice(0, 30)}${text[30] === 'A' ? 'B' : 'A'}${text.slice(31)}`), undefined, 'tampered');
  assert.equal(states.decode('not a state'), undefined);
  now += 91 * 86_400_000;
  assert.equal(states.decode(text), undefined, 'expired');
});

eachDatabase('Facebook opt-in state (POST /channels/facebook/state)', (dialect) => {
  const s = useServer(dialect);
  let space = '';
  const url = () => `/apispaces/${space}/channels/facebook/state`;
  before(async () => {
    space = await s().createSpace('fb');
    await configureAuth(s(), space);
  });

  it('answers a JSON string for an access token naming a profile, 400 without one or when too long', async () => {
    const token = await s().createToken(space, ['fb:state:wa']);
    const res = await s().request({ method: 'POST', url: url(), token, payload: { profileId: 'dana@example.com', data: 'campaign-7' } });
    assert.equal(res.statusCode, 200, res.body);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    const state = res.json();
    assert.equal(typeof state, 'string');
    assert.match(state, /^[0-9a-f]{24}[A-Za-z0-9+/]+={0,2}$/);
    const missing = await s().request({ method: 'POST', url: url(), token, payload: {} });
    assert.equal(missing.statusCode, 400);
    assert.equal(missing.json().validationFailures[0].paramName, 'profileId');
    const long = await s().request({ method: 'POST', url: url(), token, payload: { profileId: 'dana', data: 'x'.repeat(200) } });
    assert.equal(long.statusCode, 400);
    assert.equal(long.json().validationFailures[0].paramName, 'data');
    const wrongType = await s().request({ method: 'POST', url: url(), token, payload: { profileId: 7 } });
    assert.equal(wrongType.statusCode, 400);
    const noPermission = await s().createToken(space, ['prof:ra']);
    assert.equal((await s().request({ method: 'POST', url: url(), token: noPermission, payload: { profileId: 'dana' } })).statusCode, 403);
    assert.equal((await s().request({ method: 'POST', url: `/apispaces/00000000-0000-4000-8000-000000000000/channels/facebook/state`, payload: { profileId: 'dana' } })).statusCode, 404);
  });

  it("uses a session's own profile (the SDK posts {}), and refuses another profile", async () => {
    const { token } = await startSession(s(), space, 'sam');
    const res = await s().request({ method: 'POST', url: url(), token, payload: {} });
    assert.equal(res.statusCode, 200, res.body);
    const decoded = createFacebookStates(createSecretBox(s().config.installationSecret), Date.now).decode(res.json());
    assert.equal(decoded?.profileId, 'sam');
    assert.equal((await s().request({ method: 'POST', url: url(), token, payload: { profileId: 'someone-else' } })).statusCode, 403);
  });
});
