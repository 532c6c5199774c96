import type { ModuleDefinition } from '../module.js';
import { customHttpProvider } from '../../channels/custom/http-provider.js';
import { whatsAppCloudProvider } from '../../channels/whatsapp/cloud-api.provider.js';
import type { ChannelRegistry } from './channels.contract.js';
import { channelsMigrations } from './channels.migrations.js';
import { createFacebookStates } from './facebook-state.js';
import { facebookStateRoutes } from './facebook-state.routes.js';
import { createChannelsRepo } from './channels.repo.js';
import { createChannelConfigService, createProviderRegistry } from './channels.service.js';
import { createChannelRegistry, REPORT_JOB } from './channels.registry.js';
import { channelsRoutes } from './channels.routes.js';

declare module '../services.js' {
  interface Services {
    channels: ChannelRegistry;
  }
}

/** Channel configuration, adapter registry, provider callbacks and tracked links (channels.md §1, §11); the WhatsApp Cloud API provider (§6). */
export const channelsModule: ModuleDefinition = {
  name: 'channels',
  migrations: channelsMigrations,
  setup(ctx) {
    const repo = createChannelsRepo(ctx.db);
    const providers = createProviderRegistry();
    const holder: { registry?: ReturnType<typeof createChannelRegistry> } = {};
    const configs = createChannelConfigService(ctx, { repo, providers, onChange: (s, c) => holder.registry?.evict(s, c) });
    const reg = createChannelRegistry(ctx, { repo, providers, configs });
    holder.registry = reg;
    reg.registerProvider(customHttpProvider);
    reg.registerProvider(whatsAppCloudProvider({ graphApiUrl: ctx.config.graphApiUrl ?? 'https://graph.facebook.com' }));
    ctx.services.channels = reg;
    const facebookStates = createFacebookStates(ctx.secrets, () => ctx.clock.now());
    return {
      routes: async (app) => {
        await channelsRoutes(configs, reg, ctx.services.spaces)(app);
        await facebookStateRoutes(facebookStates)(app);
      },
      jobs: { [REPORT_JOB]: reg.reportJob },
      stop: () => reg.closeAll(),
    };
  },
};
