import type { ModuleDefinition } from '../module.js';
import type { ChannelAdapter, ChannelProvider } from '../../channels/adapter.js';
import type { ChannelRegistry } from '../channels/channels.contract.js';
import type { ProfileDirectory } from '../profiles/profiles.contract.js';
import type { MessagesApi } from '../messages/messages.contract.js';
import type { ContentApi } from '../content/content.contract.js';
import { smppProvider } from '../../channels/sms/smpp/smpp.provider.js';
import { httpSmsProvider } from '../../channels/sms/http/http.provider.js';
import { httpMmsProvider } from '../../channels/mms/http.provider.js';
import { smtpProvider } from '../../channels/email/smtp/smtp.provider.js';
import { smsMigrations } from './sms.migrations.js';
import { dbPartStore, dbSenderStore } from './sms.repo.js';
import { smsRoutes } from './sms.routes.js';
import { legacySmsRoutes } from './legacy.routes.js';
import { emailOpenRoutes, openPixelUrl } from './email-opens.js';
import { createSmsKeywordRules, smsOptOutHook, type SmsKeywordRules } from './sms.rules.js';

declare module '../services.js' {
  interface Services {
    smsKeywords: SmsKeywordRules;
  }
}

/**
 * Verify codes must not stay readable (verify.md §3 step 5): once a provider has accepted a message
 * that carries `metadata.verifyRequestId`, its stored body is redacted.
 */
export function redactingProvider(provider: ChannelProvider, messages: () => MessagesApi | undefined): ChannelProvider {
  return {
    ...provider,
    async create(ctx) {
      const adapter: ChannelAdapter = await provider.create(ctx);
      return {
        ...adapter,
        send: async (input) => {
          const outcome = await adapter.send(input);
          const meta = input.metadata as Record<string, unknown> | undefined;
          if (outcome.kind === 'accepted' && typeof meta?.verifyRequestId === 'string') {
            await messages()?.redactBody(input.apiSpaceId, input.messageId).catch((err) => ctx.log.warn({ err }, 'redacting a verify message failed'));
          }
          return outcome;
        },
        ...(adapter.handleCallback ? { handleCallback: adapter.handleCallback.bind(adapter) } : {}),
        ...(adapter.close ? { close: adapter.close.bind(adapter) } : {}),
      };
    },
  };
}

/** SMS, MMS and e-mail providers, SMS number listings and the inbound SMS keyword seam. */
export const smsModule: ModuleDefinition = {
  name: 'sms',
  migrations: smsMigrations,
  setup(ctx) {
    const services = ctx.services as unknown as { channels?: ChannelRegistry; messages?: MessagesApi & { onInbound?(hook: unknown): void }; profiles?: ProfileDirectory; content?: ContentApi };
    const now = () => ctx.clock.now();
    const parts = dbPartStore(ctx.db, now);
    const senders = dbSenderStore(ctx.db);
    const messages = () => services.messages;
    services.channels?.registerProvider(redactingProvider(smppProvider({ parts, senders, now }), messages));
    services.channels?.registerProvider(redactingProvider(httpSmsProvider({ senders }), messages));
    // MMS uses the SMS stitching store: where both pools hold the same numbers, a recipient keeps one number across them.
    services.channels?.registerProvider(httpMmsProvider({ senders }));
    const openKey = `${ctx.signingKeys[0]?.secret ?? ''}:email-opens`;
    services.channels?.registerProvider(smtpProvider({ openPixelUrl: openPixelUrl(ctx.config.publicBaseUrl, openKey), now }));
    const keywords = createSmsKeywordRules();
    ctx.services.smsKeywords = keywords;
    services.messages?.onInbound?.(smsOptOutHook(keywords, () => services.profiles));
    const listings = smsRoutes(() => services.channels);
    const legacy = ctx.config.legacySmsEnabled ? legacySmsRoutes(messages, ctx.services.credentials, ctx.services.spaces) : undefined;
    // SMPP receivers must be bound to get receipts and MO even when nothing is being sent (after a
    // restart, after a configuration change): bind every enabled SMPP channel now and every 30 s.
    let timer: NodeJS.Timeout | undefined;
    const listed = async () => (services.channels ? services.channels.listByProvider('smpp', 'sms') : []);
    const bind = async (list: Array<{ apiSpaceId: string; channelId: string }>) => {
      for (const c of list) {
        await services.channels!.adapter(c.apiSpaceId, c.channelId).catch((err) => ctx.log.warn({ err, apiSpaceId: c.apiSpaceId }, 'SMPP bind failed'));
      }
    };
    const bindAll = async () => bind(await listed());
    return {
      async routes(app) {
        await listings(app);
        await emailOpenRoutes(openKey, messages, ctx.services.spaces, now)(app);
        if (legacy) await legacy(app);
      },
      async start() {
        if (!ctx.config.workersEnabled) return;
        // The channels to bind are those configured when the server starts (listed before it
        // serves); the binds themselves go on in the background.
        const atStart = await listed().catch((err) => {
          ctx.log.warn({ err }, 'SMPP channels could not be listed at start');
          return [];
        });
        void bind(atStart).catch(() => {});
        timer = setInterval(() => void bindAll().catch(() => {}), 30_000);
        timer.unref();
      },
      stop() {
        if (timer) clearInterval(timer);
      },
    };
  },
};
