import type { ModuleDefinition } from '../module.js';
import type { ProfileDirectory } from '../profiles/profiles.contract.js';
import type { ChannelRegistry } from '../channels/channels.contract.js';
import type { ChannelProvider } from '../../channels/adapter.js';
import type { MessagesApi } from '../messages/messages.contract.js';
import type { JobHandler } from '../../delivery/worker.js';
import { createGateway, type Gateway } from '../../realtime/gateway.js';
import { createIdempotency } from '../../http/idempotency.js';
import { appMessagingMigrations } from './appmessaging.migrations.js';
import { createSessionsService, tokenOf, type SessionsService } from './sessions.service.js';
import { createConversationsService, type ConversationsService } from './conversations.service.js';
import { createMessagesService, type ConversationMessagesService } from './messages.service.js';
import { createA2P, type A2PInput } from './a2p.js';
import { sessionsRoutes } from './sessions.routes.js';
import { conversationsRoutes } from './conversations.routes.js';
import { createPushSender, type PushTarget } from '../../channels/push/sender.js';
import { alertContent, nativePushProvider, type PushDevices } from '../../channels/push/native-push.js';

export interface AppMessagingService {
  sessions: SessionsService;
  conversations: ConversationsService;
  messages: ConversationMessagesService;
  gateway: Gateway;
  /** One API `appMessaging` channel: post a business message into a conversation (one-api.md §4.6). */
  postA2P(apiSpaceId: string, input: A2PInput): Promise<{ conversationId: string; messageId: string; conversationEventId: number }>;
  /** The `appMessaging` channel provider (registered with the channel registry when present). */
  channelProvider: ChannelProvider;
  /**
   * Redacts the conversation message a One API `appMessaging` send produced (one-api.md §3.4);
   * nothing when there is none. Idempotent.
   */
  redactMessage(apiSpaceId: string, oneApiMessageId: string): Promise<void>;
}

declare module '../services.js' {
  interface Services {
    appMessaging: AppMessagingService;
  }
}

/** Other modules' services this one uses when they are present. */
interface Optional {
  profiles?: ProfileDirectory;
  channels?: ChannelRegistry;
  messages?: MessagesApi;
}

const SWEEP_MS = 60_000;

export const appMessagingModule: ModuleDefinition = {
  name: 'appmessaging',
  migrations: appMessagingMigrations,
  setup(ctx) {
    const optional = ctx.services as unknown as Optional;
    const profiles = optional.profiles;
    const sessions = createSessionsService(ctx, { profiles, apiSpaces: ctx.services.apiSpaces });
    ctx.services.credentials.setSessionCheck((spaceId, sessionId) => sessions.isLive(spaceId, sessionId));
    profiles?.onDeviceRemoved((spaceId, profileId, deviceId) => sessions.endDevice(spaceId, profileId, deviceId));
    // `$includeSessions=true` on profile queries: the active sessions as `sessionFull` (profiles.md §1.1).
    profiles?.setSessionLister((spaceId, profileIds) => sessions.activeByProfile(spaceId, profileIds));

    const conversations = createConversationsService(ctx, { profiles });
    const messages = createMessagesService(ctx, { profiles, conversations, oneApi: () => optional.messages });

    // A deleted profile's sessions end (reason profileDeleted). Forgotten (profiles.md §3.5): it
    // also leaves every conversation (participantRemoved events) and the messages it sent there
    // are redacted; the One API redacts its own messages and, through `redactMessage`, their copies.
    profiles?.onDeleted(async (spaceId, profileId, forget) => {
      try {
        await sessions.endProfile(spaceId, profileId);
        if (!forget) return;
        const space = await ctx.services.spaces.get(spaceId);
        if (space) await conversations.removeProfileEverywhere(space, profileId, 'system');
        await messages.redactFromProfile(spaceId, profileId);
      } catch (err) {
        ctx.log.warn({ err, apiSpaceId: spaceId, profileId }, 'App Messaging clean-up of a deleted profile failed');
      }
    });
    const a2p = createA2P(ctx, { conversations, messages, profiles });
    optional.channels?.registerProvider(a2p.provider);
    const gateway = createGateway({
      config: ctx.config, bus: ctx.bus, credentials: ctx.services.credentials, spaces: ctx.services.spaces, log: ctx.log, clock: ctx.clock, ids: ctx.ids, events: ctx.events,
    });
    // Idempotency-Key on sends (conventions.md §10); the key table belongs to the messages module.
    const idempotency = createIdempotency({ db: ctx.db, clock: ctx.clock });
    ctx.services.appMessaging = {
      sessions, conversations, messages, gateway, postA2P: a2p.postA2P, channelProvider: a2p.provider,
      redactMessage: async (spaceId, oneApiMessageId) => { await messages.redactFromSource(spaceId, oneApiMessageId); },
    };

    // Push (channels.md §5, app-messaging.md §8.3): the space's APNs/FCM credentials, the devices
    // registered through sessions; tokens the providers call invalid are removed.
    const sender = createPushSender({
      credentials: (spaceId) => ctx.services.push.credentialsFor(spaceId),
      allowPrivateTargets: ctx.config.allowPrivateChannelTargets,
      ...(ctx.config.apnsUrl ? { apnsUrl: ctx.config.apnsUrl } : {}),
      ...(ctx.config.fcmUrl ? { fcmUrl: ctx.config.fcmUrl } : {}),
      now: () => ctx.clock.now(), log: ctx.log,
    });
    const pushDevices: PushDevices = {
      async devices(spaceId, profileId) {
        if (!profiles) return [];
        return (await profiles.devices(spaceId, profileId)).filter((d) => d.push?.apns || d.push?.fcm).map((d) => ({ profileId, deviceId: d.deviceId, push: d.push! }));
      },
      async dropInvalid(spaceId, targets) {
        await sessions.dropPushTokens(spaceId, targets.flatMap((t) => {
          const token = tokenOf(t.push);
          return token === undefined ? [] : [{ profileId: t.profileId, deviceId: t.deviceId, token }];
        }));
      },
    };
    optional.channels?.registerProvider(nativePushProvider({ sender, devices: pushDevices, now: () => ctx.clock.now() }));

    // A conversation message's alert to the other participants' devices. Devices that may take it
    // later (provider unavailable) are tried again by a follow-up job, the others are not repeated.
    const MAX_PUSH_ROUNDS = 5;
    const pushNotify: JobHandler = async ({ job, signal, completeIn }) => {
      const p = job.payload as unknown as { recipients: string[]; conversationId: string; messageId: string; alert: Record<string, unknown>; devices?: PushTarget[]; round?: number };
      const spaceId = job.apiSpaceId;
      if (!spaceId || !profiles) return;
      let targets = p.devices;
      if (!targets) {
        targets = [];
        for (const r of p.recipients) targets.push(...(await pushDevices.devices(spaceId, r)));
      }
      const delivery = await sender.send(spaceId, targets, alertContent(p.alert, { conversationId: p.conversationId, messageId: p.messageId }), signal);
      if (delivery.invalid.length) await pushDevices.dropInvalid(spaceId, delivery.invalid);
      const again = delivery.failures.filter((f) => f.retry);
      const round = (p.round ?? 1) + 1;
      if (!again.length || round > MAX_PUSH_ROUNDS) {
        if (again.length) ctx.log.warn({ apiSpaceId: spaceId, messageId: p.messageId, devices: again.length }, 'push.notify: gave up on devices still unavailable');
        return;
      }
      const wait = Math.max(1_000 * 2 ** (round - 2), ...again.map((f) => f.retryAfterMs ?? 0));
      await ctx.transaction(async (uow) => {
        await ctx.queue.enqueue(uow, { kind: 'push.notify', apiSpaceId: spaceId, runAt: ctx.clock.now() + wait, payload: { ...p, v: 1, devices: again.map((f) => f.target), round } });
        await completeIn(uow.tx, uow);
      });
    };

    let timer: NodeJS.Timeout | undefined;
    return {
      routes: async (app) => {
        await app.register(sessionsRoutes(sessions, { spaces: ctx.services.spaces }));
        await app.register(conversationsRoutes(conversations, messages, idempotency));
        gateway.routes(app as never);
      },
      jobs: { 'push.notify': pushNotify },
      start() {
        const sweep = () => void sessions.sweep().catch((err) => ctx.log.warn({ err }, 'session sweep failed'));
        timer = setInterval(sweep, SWEEP_MS);
        timer.unref();
        sweep();
      },
      async stop() {
        if (timer) clearInterval(timer);
        gateway.close();
        await sender.close();
      },
    };
  },
};
