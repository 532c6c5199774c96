import type { ChannelProvider, SendInput, SendOutcome } from '../adapter.js';
import type { ApnsRequest } from './apns.js';
import { fcmData, type PushContent, type PushDelivery, type PushSender, type PushTarget } from './sender.js';

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const obj = (v: unknown): Record<string, unknown> | undefined => (isObj(v) ? v : undefined);

export interface PushDevices {
  /** The profile's devices that have push details. */
  devices(apiSpaceId: string, profileId: string): Promise<PushTarget[]>;
  /** Removes push details the providers called invalid, from sessions and devices (channels.md §5). */
  dropInvalid(apiSpaceId: string, targets: readonly PushTarget[]): Promise<void>;
}

/** A send's outcome from the devices' results: accepted when one device took it (channels.md §5). */
export function pushOutcome(d: PushDelivery, devices: number, now: number): SendOutcome {
  if (d.accepted > 0) return { kind: 'accepted', providerMessageId: d.providerMessageId, acceptedAt: now, details: { devices, accepted: d.accepted } };
  const retry = d.failures.filter((f) => f.retry);
  const reasons = [...new Set(d.failures.map((f) => f.reason))].join('; ');
  if (retry.length) {
    const wait = Math.max(0, ...retry.map((f) => f.retryAfterMs ?? 0));
    return { kind: 'transient', reason: reasons, code: 'PushUnavailable', ...(wait ? { retryAfterMs: wait } : {}) };
  }
  const code = d.failures.every((f) => f.reason.startsWith('NoCredentials')) ? 'NoCredentials' : d.invalid.length === devices ? 'InvalidDeviceTokens' : 'PushRejected';
  return { kind: 'rejected', reason: reasons || 'No device took the notification', code };
}

/**
 * The content of a One API `nativePush` send (channels.md §5): title and body as a visible
 * notification (or a silent one), `channelOptions.nativePush.data` per platform, deep links with
 * their tracking link, `expiresOn` as the platforms' expiry; `customBody.nativePush.apns` / `.fcm`
 * replace the generated payload of their platform.
 */
export async function nativePushContent(input: SendInput, now: number, trackLink?: (url: string, messageId: string, metadata?: unknown) => Promise<string>): Promise<PushContent> {
  const opts = obj(input.options) ?? {};
  const data = obj(opts.data) ?? {};
  const silent = data.isSilent === true;
  const deepLink = obj(opts.deepLink);
  const custom = obj(input.customBody);
  const links: Record<'apns' | 'fcm', { deepLink?: string; trackingLink?: string }> = { apns: {}, fcm: {} };
  for (const platform of ['apns', 'fcm'] as const) {
    const url = obj(deepLink?.[platform])?.url;
    if (typeof url !== 'string') continue;
    links[platform].deepLink = url;
    const given = deepLink?.trackingLink;
    if (typeof given === 'string') links[platform].trackingLink = given;
    else if (trackLink) links[platform].trackingLink = await trackLink(url, input.messageId, input.metadata);
  }
  const secondsLeft = input.expiresOn !== undefined ? Math.max(0, Math.floor((input.expiresOn - now) / 1000)) : undefined;
  return {
    apns(): Omit<ApnsRequest, 'token' | 'topic'> {
      const head = { pushType: silent ? 'background' as const : 'alert' as const, priority: silent ? 5 as const : 10 as const, expiration: input.expiresOn !== undefined ? Math.floor(input.expiresOn / 1000) : 0 };
      const verbatim = obj(custom?.apns);
      if (verbatim) return { ...head, payload: verbatim };
      const aps = silent ? { 'content-available': 1 } : { alert: { title: input.title, body: input.body }, sound: 'default' };
      return { ...head, payload: { aps, ...obj(data.apns), ...links.apns, messageId: input.messageId } };
    },
    fcm(): Record<string, unknown> {
      const verbatim = obj(custom?.fcm);
      if (verbatim) return verbatim;
      const fields = fcmData(obj(data.fcm), links.fcm, { messageId: input.messageId });
      return {
        ...(silent ? {} : { notification: { title: input.title, body: input.body } }),
        ...(fields ? { data: fields } : {}),
        android: { priority: 'high', ...(secondsLeft !== undefined ? { ttl: `${secondsLeft}s` } : {}) },
      };
    },
  };
}

/**
 * The `nativePush` channel (provider `internal`): no settings of its own; it sends with the
 * space's push credentials (spaces-and-billing.md §4) to every device of `to.profileId` that
 * registered push details through an App Messaging session.
 */
export function nativePushProvider(deps: { sender: PushSender; devices: PushDevices; now: () => number }): ChannelProvider {
  return {
    channel: 'nativePush',
    provider: 'internal',
    secretSettings: [],
    validateSettings: () => [],
    create: (ctx) => ({
      async send(input: SendInput): Promise<SendOutcome> {
        const profileId = typeof input.to.profileId === 'string' ? input.to.profileId : undefined;
        if (!profileId) return { kind: 'rejected', reason: 'nativePush needs to.profileId', code: 'NoAddress' };
        const targets = await deps.devices.devices(input.apiSpaceId, profileId);
        if (!targets.length) return { kind: 'rejected', reason: 'The profile has no device registered for push', code: 'NoDevices' };
        const content = await nativePushContent(input, deps.now(), ctx.trackLink);
        const delivery = await deps.sender.send(input.apiSpaceId, targets, content, input.signal);
        if (delivery.invalid.length) {
          await deps.devices.dropInvalid(input.apiSpaceId, delivery.invalid).catch((err: Error) => ctx.log.warn({ err, apiSpaceId: input.apiSpaceId }, 'push: could not remove invalid device tokens'));
        }
        return pushOutcome(delivery, targets.length, deps.now());
      },
    }),
  };
}

/**
 * The notification of a conversation message's `alert` (app-messaging.md §8.3): a platform's
 * `platforms.<platform>` details where given, else `title` and `body` (`text` counts as `body`);
 * both platforms carry `conversationId` and `messageId`.
 */
export function alertContent(alert: Record<string, unknown>, ids: { conversationId: string; messageId: string }): PushContent {
  const title = typeof alert.title === 'string' ? alert.title : undefined;
  const body = typeof alert.body === 'string' ? alert.body : typeof alert.text === 'string' ? alert.text : undefined;
  const platforms = obj(alert.platforms) ?? {};
  const apns = obj(platforms.apns) ?? {};
  const fcm = obj(platforms.fcm) ?? {};
  return {
    apns: () => ({
      pushType: 'alert', priority: 10, expiration: 0,
      payload: {
        aps: { alert: apns.alert ?? { title, body }, ...(apns.badge !== undefined ? { badge: apns.badge } : {}), sound: apns.sound ?? 'default' },
        ...obj(apns.payload), ...ids,
      },
    }),
    fcm: () => {
      const n = obj(fcm.notification);
      const notification = n ? { ...(n.title !== undefined ? { title: n.title } : {}), ...(n.body !== undefined ? { body: n.body } : {}) } : { title, body };
      const android = {
        ...(typeof fcm.collapse_key === 'string' ? { collapse_key: fcm.collapse_key } : {}),
        ...(typeof n?.icon === 'string' ? { notification: { icon: n.icon } } : {}),
      };
      return { notification, data: fcmData(obj(fcm.data), ids), ...(Object.keys(android).length ? { android } : {}) };
    },
  };
}
