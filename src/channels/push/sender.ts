import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { ApnsClient, type ApnsAuth, type ApnsRequest, type PushResult } from './apns.js';
import { FcmClient } from './fcm.js';

/** A device's push details as registered through an App Messaging session (app-messaging.md §8.1). */
export interface DevicePush {
  fcm?: { package: string; registrationId: string };
  apns?: { bundleId: string; environment: string; token: string };
}

export interface PushTarget {
  profileId: string;
  deviceId: string;
  push: DevicePush;
}

/** What to send to each platform; called once per device of that platform. */
export interface PushContent {
  apns(target: PushTarget): Omit<ApnsRequest, 'token' | 'topic'>;
  /** The FCM v1 `message` without `token`. */
  fcm(target: PushTarget): Record<string, unknown>;
}

/** The credentials the sender needs from a space (spaces-and-billing.md §4; `PushService.credentialsFor`). */
export interface SpacePushCredentials {
  apns: Array<{ bundleId: string; environment: string; certificatePem: string; privateKeyPem: string }>;
  apnsToken: { teamId: string; keyId: string; keyPem: string; bundleIds: string[] } | null;
  fcm: Array<{ package: string; serviceAccount: { project_id: string; client_email: string; private_key: string; token_uri?: string } }>;
}

export interface PushDelivery {
  accepted: number;
  /** The first accepted notification's provider id. */
  providerMessageId?: string;
  /** Devices whose notification was not accepted, with why and whether a later try may succeed. */
  failures: Array<{ target: PushTarget; reason: string; retry: boolean; retryAfterMs?: number }>;
  /** Devices the provider said no longer exist (their push details are to be removed). */
  invalid: PushTarget[];
}

export interface PushSenderOptions {
  credentials(apiSpaceId: string): Promise<SpacePushCredentials>;
  allowPrivateTargets: boolean;
  /** Origin used for APNs instead of Apple's (both environments): a test peer or a relay. */
  apnsUrl?: string;
  /** Origin used for FCM instead of `https://fcm.googleapis.com`. */
  fcmUrl?: string;
  now: () => number;
  log: Logger;
}

type Client = ApnsClient | FcmClient;

/**
 * Sends one notification to many devices over the space's APNs and FCM credentials. Clients (an
 * HTTP/2 session to APNs, an OAuth token and connection pool for FCM) are kept per space and
 * credential, and replaced when that credential changes.
 */
export function createPushSender(options: PushSenderOptions) {
  const clients = new Map<string, { fingerprint: string; client: Client }>();

  /**
   * The client for `key` built from credentials `material`: reused while the material is the same,
   * replaced (the old one closed) when it changed. Keyed by content, not by the configuration's
   * revision, which starts again at 1 after a deletion.
   */
  function cached<C extends Client>(apiSpaceId: string, key: string, material: unknown, make: () => C): C {
    const id = `${apiSpaceId}\u0000${key}`;
    const fingerprint = createHash('sha256').update(JSON.stringify(material)).digest('base64url');
    const hit = clients.get(id);
    if (hit && hit.fingerprint === fingerprint) return hit.client as C;
    if (hit) void hit.client.close().catch(() => {});
    const client = make();
    clients.set(id, { fingerprint, client });
    return client;
  }

  function apnsClient(apiSpaceId: string, creds: SpacePushCredentials, bundleId: string, environment: string): ApnsClient | undefined {
    if (environment !== 'development' && environment !== 'production') return undefined;
    const token = creds.apnsToken;
    let auth: ApnsAuth;
    let key: string;
    // Token credentials win over a certificate for the same bundle (spaces-and-billing.md §4).
    if (token && (token.bundleIds.length === 0 || token.bundleIds.includes(bundleId))) {
      auth = { type: 'token', teamId: token.teamId, keyId: token.keyId, keyPem: token.keyPem };
      key = `apns-token\u0000${environment}`;
    } else {
      const cert = creds.apns.find((c) => c.bundleId === bundleId && c.environment === environment);
      if (!cert) return undefined;
      auth = { type: 'certificate', certificatePem: cert.certificatePem, privateKeyPem: cert.privateKeyPem };
      key = `apns-cert\u0000${bundleId}\u0000${environment}`;
    }
    return cached(apiSpaceId, key, auth, () => new ApnsClient({
      environment, auth, allowPrivateTargets: options.allowPrivateTargets, now: options.now,
      ...(options.apnsUrl ? { baseUrl: options.apnsUrl } : {}),
    }));
  }

  function fcmClient(apiSpaceId: string, creds: SpacePushCredentials, androidPackage: string): FcmClient | undefined {
    const entry = creds.fcm.find((f) => f.package === androidPackage);
    if (!entry) return undefined;
    return cached(apiSpaceId, `fcm\u0000${androidPackage}`, entry.serviceAccount, () => new FcmClient({
      serviceAccount: entry.serviceAccount, allowPrivateTargets: options.allowPrivateTargets, now: options.now,
      ...(options.fcmUrl ? { baseUrl: options.fcmUrl } : {}),
    }));
  }

  async function one(apiSpaceId: string, creds: SpacePushCredentials, target: PushTarget, content: PushContent, signal?: AbortSignal): Promise<PushResult> {
    const { apns, fcm } = target.push;
    if (apns) {
      const client = apnsClient(apiSpaceId, creds, apns.bundleId, apns.environment);
      if (!client) return { ok: false, retry: false, invalidToken: false, reason: `NoCredentials: no APNs credentials for ${apns.bundleId} (${apns.environment})` };
      return client.send({ ...content.apns(target), token: apns.token, topic: apns.bundleId }, signal);
    }
    if (fcm) {
      const client = fcmClient(apiSpaceId, creds, fcm.package);
      if (!client) return { ok: false, retry: false, invalidToken: false, reason: `NoCredentials: no FCM credentials for ${fcm.package}` };
      return client.send(fcm.registrationId, content.fcm(target), signal);
    }
    return { ok: false, retry: false, invalidToken: false, reason: 'NoPushDetails' };
  }

  return {
    /** Sends to every target at once; never throws for a provider's answer. */
    async send(apiSpaceId: string, targets: readonly PushTarget[], content: PushContent, signal?: AbortSignal): Promise<PushDelivery> {
      const out: PushDelivery = { accepted: 0, failures: [], invalid: [] };
      if (!targets.length) return out;
      const creds = await options.credentials(apiSpaceId);
      const results = await Promise.all(targets.map((t) => one(apiSpaceId, creds, t, content, signal).catch((err: Error): PushResult => ({ ok: false, retry: true, invalidToken: false, reason: err.message }))));
      results.forEach((r, i) => {
        const target = targets[i]!;
        if (r.ok) {
          out.accepted++;
          out.providerMessageId ??= r.id;
          return;
        }
        if (r.invalidToken) out.invalid.push(target);
        out.failures.push({ target, reason: r.reason, retry: r.retry, ...(r.retryAfterMs !== undefined ? { retryAfterMs: r.retryAfterMs } : {}) });
        if (r.reason.startsWith('NoCredentials')) options.log.warn({ apiSpaceId, deviceId: target.deviceId, reason: r.reason }, 'push: device skipped');
      });
      return out;
    },

    async close(): Promise<void> {
      const all = [...clients.values()];
      clients.clear();
      await Promise.allSettled(all.map((c) => c.client.close()));
    },
  };
}
export type PushSender = ReturnType<typeof createPushSender>;

/** FCM `data` takes string values only: others are JSON-stringified (channels.md §5). */
export function fcmData(...sources: Array<Record<string, unknown> | undefined>): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const s of sources) for (const [k, v] of Object.entries(s ?? {})) if (v !== undefined && v !== null) out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return Object.keys(out).length ? out : undefined;
}
