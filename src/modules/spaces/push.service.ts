import { createPrivateKey, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import type { Platform } from '../../platform.js';
import type { Actor } from '../../auth/actor.js';
import type { SpaceSettings } from '../../storage/space-settings.js';
import { iso } from '../../lib/clock.js';
import { errors } from '../../http/errors.js';
import { parseServiceAccount } from '../../channels/google/service-account.js';

export type ApnsEnvironment = 'development' | 'production';

/** The `push` space setting. Private material is sealed with the installation's secret box. */
interface PushStored {
  apns: Array<{ bundleId: string; environment: ApnsEnvironment; subject: string; expiresOn: string; certificatePem: string; privateKey: string; updatedOn: string }>;
  apnsToken: { teamId: string; keyId: string; bundleIds: string[]; key: string; updatedOn: string } | null;
  fcm: Array<{ package: string; projectId: string; clientEmail: string; serviceAccount: string; updatedOn: string }>;
}

/** A Google service account as FCM HTTP v1 needs it (other fields of the JSON are kept). */
export interface ServiceAccount {
  project_id: string;
  client_email: string;
  private_key: string;
  [field: string]: unknown;
}

/** Decrypted credentials for the push adapters. `revision` changes on every configuration change. */
export interface PushCredentials {
  revision: number;
  apns: Array<{ bundleId: string; environment: ApnsEnvironment; certificatePem: string; privateKeyPem: string; expiresOn: string }>;
  apnsToken: { teamId: string; keyId: string; keyPem: string; bundleIds: string[] } | null;
  fcm: Array<{ package: string; projectId: string; clientEmail: string; serviceAccount: ServiceAccount }>;
}

export type ApnsCredentials =
  | ({ type: 'token' } & NonNullable<PushCredentials['apnsToken']>)
  | ({ type: 'certificate' } & PushCredentials['apns'][number]);

const KEY = 'push';
const UID_OID = '0.9.2342.19200300.100.1.1';
const empty = (): PushStored => ({ apns: [], apnsToken: null, fcm: [] });
const bad = (paramName: string, message: string) => errors.invalidField(paramName, message);

const apnsView = (e: PushStored['apns'][number]) => ({
  bundleId: e.bundleId, environment: e.environment, type: 'certificate' as const, subject: e.subject, expiresOn: e.expiresOn, _updatedOn: e.updatedOn,
});
const tokenView = (t: NonNullable<PushStored['apnsToken']>) => ({ teamId: t.teamId, keyId: t.keyId, bundleIds: t.bundleIds, _updatedOn: t.updatedOn });
const fcmView = (f: PushStored['fcm'][number]) => ({ package: f.package, projectId: f.projectId, clientEmail: f.clientEmail, _updatedOn: f.updatedOn });

/** Decodes base64 (standard or url-safe, whitespace allowed); undefined when it is not base64. */
function fromBase64(text: string): Buffer | undefined {
  const clean = text.replace(/\s+/g, '');
  if (!clean || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(clean)) return undefined;
  return Buffer.from(clean, 'base64');
}

function openPkcs12(der: Buffer, password: string | undefined): forge.pkcs12.Pkcs12Pfx {
  let asn1: forge.asn1.Asn1;
  try {
    asn1 = forge.asn1.fromDer(forge.util.createBuffer(der.toString('binary')));
  } catch {
    throw bad('certificate', 'Not a readable PKCS#12 (.p12) file');
  }
  // An omitted password is tried as the empty one, which is what most exports without one use.
  const attempts = password === undefined ? ['', null] : [password];
  let wrongPassword = false;
  for (const pw of attempts) {
    try {
      return forge.pkcs12.pkcs12FromAsn1(asn1, false, pw as string);
    } catch (err) {
      if (/password|mac/i.test((err as Error).message)) wrongPassword = true;
    }
  }
  if (wrongPassword) throw bad('password', 'The password does not open this PKCS#12 file');
  throw bad('certificate', 'Not a readable PKCS#12 (.p12) file');
}

/** Reads an APNs PKCS#12 and checks it can serve `bundleId` in `environment` now. */
export function readApnsCertificate(base64: string, password: string | undefined, bundleId: string, environment: ApnsEnvironment, now: number) {
  const der = fromBase64(base64);
  if (!der?.length) throw bad('certificate', 'Must be a base64-encoded PKCS#12 (.p12) file');
  const p12 = openPkcs12(der, password);
  const { certBag, pkcs8ShroudedKeyBag, keyBag } = forge.pki.oids;
  const bags = (type: string) => p12.getBags({ bagType: type })[type] ?? [];
  const certs = bags(certBag).map((b) => b.cert).filter((c): c is forge.pki.Certificate => !!c);
  const keys = [...bags(pkcs8ShroudedKeyBag), ...bags(keyBag)].map((b) => b.key as forge.pki.rsa.PrivateKey | undefined).filter((k) => !!k);
  if (!certs.length) throw bad('certificate', 'The file holds no readable RSA certificate');
  const pair = keys
    .map((key) => ({ key, cert: certs.find((c) => (c.publicKey as forge.pki.rsa.PublicKey).n?.equals(key!.n)) }))
    .find((x) => x.cert);
  if (!pair?.cert || !pair.key) throw bad('certificate', 'The file holds no private key for its certificate');
  const cert = pair.cert;
  const subject = String(cert.subject.getField('CN')?.value ?? '');
  const uid = String(cert.subject.getField({ type: UID_OID } as never)?.value ?? '');
  const named = /Push Services: (.+)$/.exec(subject)?.[1]?.trim();
  if (named !== bundleId && uid !== bundleId) {
    throw bad('certificate', `The certificate "${subject}" is not valid for bundle ${bundleId}`);
  }
  if ((environment === 'production' && /^Apple Development /.test(subject)) || (environment === 'development' && /^Apple Production /.test(subject))) {
    throw bad('environment', `The certificate "${subject}" is not valid for the ${environment} environment`);
  }
  if (cert.validity.notAfter.getTime() <= now) throw bad('certificate', `The certificate expired on ${iso(cert.validity.notAfter.getTime())}`);
  if (cert.validity.notBefore.getTime() > now) throw bad('certificate', `The certificate is not valid before ${iso(cert.validity.notBefore.getTime())}`);
  const pki = forge.pki;
  return {
    subject,
    expiresOn: iso(cert.validity.notAfter.getTime()),
    certificatePem: pki.certificateToPem(cert),
    privateKeyPem: pki.privateKeyInfoToPem(pki.wrapRsaPrivateKey(pki.privateKeyToAsn1(pair.key))),
  };
}

function privateKey(text: string, paramName: string): KeyObject {
  try {
    return createPrivateKey(text);
  } catch {
    throw bad(paramName, 'Not a readable unencrypted PEM private key');
  }
}

/** Reads a .p8 signing key (PEM text, base64 of it, or base64 PKCS#8 DER) → PKCS#8 PEM. */
export function readApnsSigningKey(input: string): string {
  let key: KeyObject;
  if (input.includes('-----BEGIN')) key = privateKey(input, 'key');
  else {
    const raw = fromBase64(input);
    if (!raw?.length) throw bad('key', 'Must be the .p8 key as PEM text or base64');
    const text = raw.toString('utf8');
    if (text.includes('-----BEGIN')) key = privateKey(text, 'key');
    else {
      try {
        key = createPrivateKey({ key: raw, format: 'der', type: 'pkcs8' });
      } catch {
        throw bad('key', 'Not a readable private key');
      }
    }
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw bad('key', 'Must be an EC P-256 private key (an APNs .p8 file)');
  }
  return key.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** Checks a Google service account for FCM HTTP v1. */
export function readServiceAccount(input: unknown): ServiceAccount {
  const parsed = parseServiceAccount(input, { paramName: 'serviceAccount', projectId: true });
  if (!parsed.account) throw errors.validation(parsed.failures);
  return parsed.account as ServiceAccount;
}

export type PushService = ReturnType<typeof createPushService>;

/** Push configuration of an API space (spaces-and-billing.md §4). */
export function createPushService(p: Platform, settings: SpaceSettings) {
  const { clock, secrets, log } = p;
  const load = async (apiSpaceId: string) => settings.get<PushStored>(apiSpaceId, KEY);
  const change = (actor: Actor, apiSpaceId: string, fn: (s: PushStored) => void) =>
    settings.update<PushStored>(apiSpaceId, KEY, actor.actor, (current) => {
      const next: PushStored = { ...empty(), ...current };
      fn(next);
      return next;
    });

  async function credentialsFor(apiSpaceId: string): Promise<PushCredentials> {
    const s = await load(apiSpaceId);
    const v = s?.value ?? empty();
    return {
      revision: s?.revision ?? 0,
      apns: v.apns.map((e) => ({ bundleId: e.bundleId, environment: e.environment, certificatePem: e.certificatePem, privateKeyPem: secrets.open(e.privateKey), expiresOn: e.expiresOn })),
      apnsToken: v.apnsToken ? { teamId: v.apnsToken.teamId, keyId: v.apnsToken.keyId, bundleIds: v.apnsToken.bundleIds, keyPem: secrets.open(v.apnsToken.key) } : null,
      fcm: v.fcm.map((f) => ({ package: f.package, projectId: f.projectId, clientEmail: f.clientEmail, serviceAccount: JSON.parse(secrets.open(f.serviceAccount)) as ServiceAccount })),
    };
  }

  return {
    credentialsFor,

    /** APNs credentials for one bundle: token credentials win over a certificate (§4). */
    async apnsFor(apiSpaceId: string, bundleId: string, environment: ApnsEnvironment): Promise<ApnsCredentials | undefined> {
      const c = await credentialsFor(apiSpaceId);
      if (c.apnsToken && (c.apnsToken.bundleIds.length === 0 || c.apnsToken.bundleIds.includes(bundleId))) return { type: 'token', ...c.apnsToken };
      const cert = c.apns.find((e) => e.bundleId === bundleId && e.environment === environment);
      return cert ? { type: 'certificate', ...cert } : undefined;
    },

    async fcmFor(apiSpaceId: string, androidPackage: string) {
      return (await credentialsFor(apiSpaceId)).fcm.find((f) => f.package === androidPackage);
    },

    async summary(apiSpaceId: string) {
      const v = (await load(apiSpaceId))?.value ?? empty();
      return { apns: v.apns.map(apnsView), apnsToken: v.apnsToken ? tokenView(v.apnsToken) : null, fcm: v.fcm.map(fcmView) };
    },

    async putApnsCertificate(actor: Actor, apiSpaceId: string, input: { bundleId: string; environment: ApnsEnvironment; certificate: string; password?: string }) {
      const read = readApnsCertificate(input.certificate, input.password, input.bundleId, input.environment, clock.now());
      const entry: PushStored['apns'][number] = {
        bundleId: input.bundleId, environment: input.environment, subject: read.subject, expiresOn: read.expiresOn,
        certificatePem: read.certificatePem, privateKey: secrets.seal(read.privateKeyPem), updatedOn: iso(clock.now()),
      };
      await change(actor, apiSpaceId, (s) => {
        s.apns = [...s.apns.filter((e) => !(e.bundleId === entry.bundleId && e.environment === entry.environment)), entry];
      });
      return apnsView(entry);
    },

    async removeApnsCertificate(actor: Actor, apiSpaceId: string, bundleId: string, environment: ApnsEnvironment) {
      await change(actor, apiSpaceId, (s) => {
        const kept = s.apns.filter((e) => !(e.bundleId === bundleId && e.environment === environment));
        if (kept.length === s.apns.length) throw errors.notFound('APNs certificate');
        s.apns = kept;
      });
    },

    async apnsCertificatePem(apiSpaceId: string, bundleId: string, environment: ApnsEnvironment): Promise<string> {
      const e = (await load(apiSpaceId))?.value.apns.find((x) => x.bundleId === bundleId && x.environment === environment);
      if (!e) throw errors.notFound('APNs certificate');
      return e.certificatePem;
    },

    async putApnsToken(actor: Actor, apiSpaceId: string, input: { teamId: string; keyId: string; key: string; bundleIds?: string[] }) {
      const pem = readApnsSigningKey(input.key);
      const token: NonNullable<PushStored['apnsToken']> = {
        teamId: input.teamId, keyId: input.keyId, bundleIds: [...new Set(input.bundleIds ?? [])], key: secrets.seal(pem), updatedOn: iso(clock.now()),
      };
      await change(actor, apiSpaceId, (s) => {
        s.apnsToken = token;
      });
      return tokenView(token);
    },

    async removeApnsToken(actor: Actor, apiSpaceId: string) {
      await change(actor, apiSpaceId, (s) => {
        if (!s.apnsToken) throw errors.notFound('APNs token credentials');
        s.apnsToken = null;
      });
    },

    /** The .p8 key; every download is written to the audit log. */
    async apnsTokenKey(actor: Actor, apiSpaceId: string): Promise<{ keyId: string; pem: string }> {
      const t = (await load(apiSpaceId))?.value.apnsToken;
      if (!t) throw errors.notFound('APNs token credentials');
      log.info({ audit: 'push.apnstoken.key.download', apiSpaceId, keyId: t.keyId, teamId: t.teamId, actor: actor.actor }, 'APNs signing key downloaded');
      return { keyId: t.keyId, pem: secrets.open(t.key) };
    },

    async putFcm(actor: Actor, apiSpaceId: string, androidPackage: string, input: { serviceAccount?: unknown; serverKey?: unknown }) {
      if (input.serverKey !== undefined) {
        throw bad('serverKey', 'Legacy FCM server keys are not supported (the legacy FCM API no longer exists); supply serviceAccount for FCM HTTP v1');
      }
      if (input.serviceAccount === undefined) throw bad('serviceAccount', 'Required: the Google service account JSON');
      const sa = readServiceAccount(input.serviceAccount);
      const entry: PushStored['fcm'][number] = {
        package: androidPackage, projectId: sa.project_id, clientEmail: sa.client_email, serviceAccount: secrets.seal(JSON.stringify(sa)), updatedOn: iso(clock.now()),
      };
      await change(actor, apiSpaceId, (s) => {
        s.fcm = [...s.fcm.filter((f) => f.package !== androidPackage), entry];
      });
      return fcmView(entry);
    },

    async removeFcm(actor: Actor, apiSpaceId: string, androidPackage: string) {
      await change(actor, apiSpaceId, (s) => {
        const kept = s.fcm.filter((f) => f.package !== androidPackage);
        if (kept.length === s.fcm.length) throw errors.notFound('FCM credentials');
        s.fcm = kept;
      });
    },
  };
}
