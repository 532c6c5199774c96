import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import forge from 'node-forge';
import pino from 'pino';
import { eachDatabase, useServer } from '../helpers/harness.js';

const DAY = 86_400_000;
const rsa = () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();

/** A self-signed APNs-like certificate and its key in a PKCS#12, as base64. */
function p12(opts: { cn: string; uid?: string; password: string; notBefore?: number; notAfter?: number }): string {
  const key = forge.pki.privateKeyFromPem(rsa()) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(opts.notBefore ?? Date.now() - DAY);
  cert.validity.notAfter = new Date(opts.notAfter ?? Date.now() + 365 * DAY);
  const attrs: forge.pki.CertificateField[] = [{ name: 'commonName', value: opts.cn }, { name: 'organizationName', value: 'Example Ltd' }];
  if (opts.uid) attrs.push({ type: '0.9.2342.19200300.100.1.1', value: opts.uid });
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.sign(key, forge.md.sha256.create());
  const asn1 = forge.pkcs12.toPkcs12Asn1(key, [cert], opts.password, { algorithm: '3des' });
  return Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary').toString('base64');
}

const shopP12 = p12({ cn: 'Apple Push Services: com.example.shop', uid: 'com.example.shop', password: 's3cret' });
const expiredP12 = p12({ cn: 'Apple Push Services: com.example.shop', password: 's3cret', notBefore: Date.now() - 400 * DAY, notAfter: Date.now() - DAY });
const devOnlyP12 = p12({ cn: 'Apple Development IOS Push Services: com.example.shop', password: '' });
const ecKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const p384Key = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const serviceAccount = {
  type: 'service_account', project_id: 'shop-67890', private_key_id: 'abc123', private_key: rsa(),
  client_email: 'push-sender@shop-67890.iam.gserviceaccount.com', token_uri: 'https://oauth2.googleapis.com/token',
};

eachDatabase('push configuration', (dialect) => {
  const logLines: string[] = [];
  const s = useServer(dialect, { log: pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) }) });

  it('stores APNs certificates, serves only the public part and removes them', async () => {
    const a = await s().createSpace('Push');
    const empty = await s().request({ method: 'GET', url: `/apispaces/${a}/push` });
    assert.equal(empty.statusCode, 200);
    assert.deepEqual(empty.json(), { apns: [], apnsToken: null, fcm: [] });

    const put = await s().request({ method: 'PUT', url: `/apispaces/${a}/push/apns`, payload: { bundleId: 'com.example.shop', environment: 'production', certificate: shopP12, password: 's3cret' } });
    assert.equal(put.statusCode, 200, put.body);
    assert.equal(put.json().subject, 'Apple Push Services: com.example.shop');
    assert.equal(put.json().type, 'certificate');
    assert.ok(Date.parse(put.json().expiresOn) > Date.now());
    const summary = (await s().request({ method: 'GET', url: `/apispaces/${a}/push` })).json();
    assert.equal(summary.apns.length, 1);
    assert.equal(summary.apns[0].bundleId, 'com.example.shop');

    const cert = await s().request({ method: 'GET', url: `/apispaces/${a}/push/apns/com.example.shop/production/cert` });
    assert.equal(cert.statusCode, 200);
    assert.match(String(cert.headers['content-type']), /^application\/x-pem-file/);
    assert.equal(cert.headers['content-disposition'], 'attachment; filename="com.example.shop-production.pem"');
    assert.match(cert.body, /^-----BEGIN CERTIFICATE-----/);
    assert.doesNotMatch(cert.body, /PRIVATE KEY/);
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${a}/push/apns/com.example.shop/development/cert` })).statusCode, 404);

    // The private key is sealed at rest and decrypted only for the adapters.
    const row = await s().container.platform.db.selectFrom('space_settings').select('value').where('api_space_id', '=', a).where('key', '=', 'push').executeTakeFirstOrThrow();
    assert.doesNotMatch(row.value, /PRIVATE KEY/);
    const creds = await s().container.services.push.credentialsFor(a);
    assert.match(creds.apns[0]!.privateKeyPem, /^-----BEGIN PRIVATE KEY-----/);
    assert.equal((await s().container.services.push.apnsFor(a, 'com.example.shop', 'production'))?.type, 'certificate');

    const del = await s().request({ method: 'DELETE', url: `/apispaces/${a}/push/apns/com.example.shop/production`, headers: { 'content-type': 'application/json' } });
    assert.equal(del.statusCode, 204);
    assert.equal((await s().request({ method: 'DELETE', url: `/apispaces/${a}/push/apns/com.example.shop/production` })).statusCode, 404);
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${a}/push` })).json().apns.length, 0);
  });

  it('refuses unusable APNs certificates with 400', async () => {
    const a = await s().createSpace('Push bad');
    const put = (payload: object) => s().request({ method: 'PUT', url: `/apispaces/${a}/push/apns`, payload });
    const base = { bundleId: 'com.example.shop', environment: 'production', certificate: shopP12, password: 's3cret' };
    const cases: Array<[object, string]> = [
      [{ ...base, password: 'wrong' }, 'password'],
      [{ ...base, password: undefined }, 'password'],
      [{ ...base, certificate: expiredP12 }, 'certificate'],
      [{ ...base, bundleId: 'com.example.other' }, 'certificate'],
      [{ ...base, certificate: Buffer.from('not a p12 file').toString('base64') }, 'certificate'],
      [{ ...base, certificate: '%%% not base64 %%%' }, 'certificate'],
      [{ ...base, environment: 'staging' }, 'environment'],
      [{ ...base, certificate: devOnlyP12, password: '' }, 'environment'],
    ];
    for (const [payload, param] of cases) {
      const res = await put(payload);
      assert.equal(res.statusCode, 400, `${JSON.stringify(payload).slice(0, 80)} → ${res.body}`);
      assert.equal(res.json().code, 'ValidationFailed');
      assert.equal(res.json().validationFailures[0].paramName, param, res.body);
    }
    const dev = await put({ ...base, environment: 'development', certificate: devOnlyP12, password: undefined });
    assert.equal(dev.statusCode, 200, dev.body);
  });

  it('stores token-based APNs credentials and audits key downloads', async () => {
    const a = await s().createSpace('Token');
    const put = (payload: object) => s().request({ method: 'PUT', url: `/apispaces/${a}/push/apnstoken`, payload });
    const ok = await put({ teamId: 'TEAM4X7Q2Z', keyId: 'KEY9P3R6W1', key: ecKey });
    assert.equal(ok.statusCode, 200, ok.body);
    const { _updatedOn, ...summary } = ok.json() as Record<string, unknown>;
    assert.deepEqual(summary, { teamId: 'TEAM4X7Q2Z', keyId: 'KEY9P3R6W1', bundleIds: [] });
    assert.equal(typeof _updatedOn, 'string');
    const b64 = await put({ teamId: 'TEAM4X7Q2Z', keyId: 'KEY9P3R6W2', key: Buffer.from(ecKey).toString('base64'), bundleIds: ['com.example.shop'] });
    assert.equal(b64.statusCode, 200, b64.body);
    assert.deepEqual(b64.json().bundleIds, ['com.example.shop']);
    for (const bad of [{ key: serviceAccount.private_key }, { key: p384Key }, { key: 'garbage' }, { teamId: 'SHORT' }, { keyId: 'WAY-TOO-LONG-1' }]) {
      const res = await put({ teamId: 'TEAM4X7Q2Z', keyId: 'KEY9P3R6W1', key: ecKey, ...bad });
      assert.equal(res.statusCode, 400, JSON.stringify(bad));
    }
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${a}/push` })).json().apnsToken.keyId, 'KEY9P3R6W2');

    const key = await s().request({ method: 'GET', url: `/apispaces/${a}/push/apnstoken/key` });
    assert.equal(key.statusCode, 200);
    assert.equal(key.headers['content-disposition'], 'attachment; filename="AuthKey_KEY9P3R6W2.p8"');
    assert.match(String(key.headers['content-type']), /^application\/x-pem-file/);
    assert.deepEqual(createPrivateKey(key.body).export({ format: 'jwk' }), createPrivateKey(ecKey).export({ format: 'jwk' }));
    const audit = logLines.map((l) => JSON.parse(l)).find((l) => l.audit === 'push.apnstoken.key.download' && l.apiSpaceId === a);
    assert.equal(audit?.keyId, 'KEY9P3R6W2');
    assert.equal(audit?.actor, 'interactive:admin');

    await s().request({ method: 'PUT', url: `/apispaces/${a}/push/apns`, payload: { bundleId: 'com.example.shop', environment: 'production', certificate: shopP12, password: 's3cret' } });
    const chosen = await s().container.services.push.apnsFor(a, 'com.example.shop', 'production');
    assert.equal(chosen?.type, 'token');
    assert.equal((await s().container.services.push.apnsFor(a, 'com.example.other', 'production')), undefined);

    assert.equal((await s().request({ method: 'DELETE', url: `/apispaces/${a}/push/apnstoken` })).statusCode, 204);
    assert.equal((await s().request({ method: 'DELETE', url: `/apispaces/${a}/push/apnstoken` })).statusCode, 404);
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${a}/push/apnstoken/key` })).statusCode, 404);
    assert.equal((await s().container.services.push.apnsFor(a, 'com.example.shop', 'production'))?.type, 'certificate');
  });

  it('stores FCM HTTP v1 service accounts and refuses legacy server keys', async () => {
    const a = await s().createSpace('FCM');
    const url = `/apispaces/${a}/push/fcm/com.example.shop`;
    const ok = await s().request({ method: 'PUT', url, payload: { serviceAccount } });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal(ok.json().projectId, 'shop-67890');
    assert.equal(ok.json().clientEmail, serviceAccount.client_email);
    assert.equal(JSON.stringify((await s().request({ method: 'GET', url: `/apispaces/${a}/push` })).json()).includes('PRIVATE'), false);
    const creds = await s().container.services.push.fcmFor(a, 'com.example.shop');
    assert.equal(creds?.serviceAccount.private_key, serviceAccount.private_key);

    const legacy = await s().request({ method: 'PUT', url, payload: { serverKey: 'AAAA1234:legacy' } });
    assert.equal(legacy.statusCode, 400);
    assert.equal(legacy.json().validationFailures[0].paramName, 'serverKey');
    const ecSa = await s().request({ method: 'PUT', url, payload: { serviceAccount: { ...serviceAccount, private_key: ecKey } } });
    assert.equal(ecSa.json().validationFailures[0].paramName, 'serviceAccount.private_key');
    const missing = await s().request({ method: 'PUT', url, payload: { serviceAccount: { private_key: serviceAccount.private_key } } });
    assert.deepEqual(missing.json().validationFailures.map((f: { paramName: string }) => f.paramName), ['serviceAccount.project_id', 'serviceAccount.client_email']);
    assert.equal((await s().request({ method: 'PUT', url, payload: {} })).statusCode, 400);
    assert.equal((await s().request({ method: 'PUT', url: `/apispaces/${a}/push/fcm/notapackage`, payload: { serviceAccount } })).statusCode, 400);
    const asText = await s().request({ method: 'PUT', url: `/apispaces/${a}/push/fcm/com.example.other`, payload: { serviceAccount: JSON.stringify(serviceAccount) } });
    assert.equal(asText.statusCode, 200, asText.body);
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${a}/push` })).json().fcm.length, 2);

    assert.equal((await s().request({ method: 'DELETE', url })).statusCode, 204);
    assert.equal((await s().request({ method: 'DELETE', url })).statusCode, 404);
  });

  it('admits only admin account tokens of the space', async () => {
    const a = await s().createSpace('Guarded');
    const token = await s().createToken(a, ['apis:ro', 'chan:w']);
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${a}/push`, token })).statusCode, 403);
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${a}/push`, token: null })).statusCode, 401);
    assert.equal((await s().request({ method: 'GET', url: '/apispaces/00000000-0000-4000-8000-000000000000/push' })).statusCode, 404);
  });
});
