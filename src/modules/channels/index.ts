import type { ModuleDefinition } from '../module.js';
import { customHttpProvider } from '../../channels/custom/http-provider.js';
import { whatsAppCloudProvider } from '../../channels/whatsapp/cloud-api.provider.js';
import { messengerSendApiProvider } from '../../channels/messenger/send-api.provider.js';
import { xApiProvider } from '../../channels/x/x-api.provider.js';
import { rcsRbmProvider } from '../../channels/rcs/rbm-api.provider.js';
import type { ChannelRegistry } from './channels.contract.js';
import { channelsMigrations } from './channels.migrations.js';
import { createFacebookStates } from './facebook-state.js';
import { facebookStateRoutes } from './facebook-state.routes.js';
import { facebookOptins } from './facebook-optin.js';
import { createChannelsRepo } from './channels.repo.js';
import { createChannelConfigService, createProviderRegistry } from './channels.service.js';
import { createChannelRegistry, MARK_READ_JOB, REPORT_JOB } from './channels.registry.js';
import { channelsRoutes } from './channels.routes.js';
import { createPolling, POLL_JOB } from './channels.polling.js';

declare module '../services.js' {
  interface Services {
    channels: ChannelRegistry;
  }
}

/** Channel configuration, adapter registry, provider callbacks and tracked links (channels.md §1, §11); the WhatsApp (§6), Messenger (§7), X (§8) and RCS (§10) providers, Messenger opt-ins and polling for inbound messages. */
export const channelsModule: ModuleDefinition = {
  name: 'channels',
  migrations: channelsMigrations,
  setup(ctx) {
    const repo = createChannelsRepo(ctx.db);
    const providers = createProviderRegistry();
    const holder: { registry?: ReturnType<typeof createChannelRegistry>; polling?: ReturnType<typeof createPolling> } = {};
    const configs = createChannelConfigService(ctx, {
      repo, providers,
      async onChange(s, c) {
        holder.registry?.evict(s, c);
        // The configuration is stored either way: a chain not started here starts with the next start.
        await holder.polling?.ensure(s, c).catch((err) => ctx.log.warn({ err, apiSpaceId: s, channelId: c }, 'could not start polling the channel'));
      },
    });
    const facebookStates = createFacebookStates(ctx.secrets, () => ctx.clock.now());
    const reg = createChannelRegistry(ctx, { repo, providers, configs, optin: facebookOptins(ctx, facebookStates) });
    holder.registry = reg;
    const polling = (holder.polling = createPolling(ctx, { repo, providers, registry: reg, queueInbound: (uow, s, c, inbounds) => reg.queueReports(uow, s, c, { inbounds }) }));
    reg.registerProvider(customHttpProvider);
    const graphApiUrl = ctx.config.graphApiUrl ?? 'https://graph.facebook.com';
    reg.registerProvider(whatsAppCloudProvider({ graphApiUrl }));
    reg.registerProvider(messengerSendApiProvider({ graphApiUrl }));
    reg.registerProvider(xApiProvider({ xApiUrl: ctx.config.xApiUrl ?? 'https://api.x.com', pollIntervalMs: ctx.config.xPollIntervalSeconds * 1000 }));
    reg.registerProvider(rcsRbmProvider({ rcsApiUrl: ctx.config.rcsApiUrl ?? 'https://rcsbusinessmessaging.googleapis.com' }));
    ctx.services.channels = reg;
    return {
      routes: async (app) => {
        await channelsRoutes(configs, reg, ctx.services.spaces)(app);
        await facebookStateRoutes(facebookStates)(app);
      },
      jobs: { [REPORT_JOB]: reg.reportJob, [MARK_READ_JOB]: reg.markReadJob, [POLL_JOB]: polling.job },
      start: () => polling.start(),
      stop: () => reg.closeAll(),
    };
  },
};
