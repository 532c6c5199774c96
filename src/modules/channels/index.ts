import type { ModuleDefinition } from '../module.js';
import { customHttpProvider } from '../../channels/custom/http-provider.js';
import type { ChannelRegistry } from './channels.contract.js';
import { channelsMigrations } from './channels.migrations.js';
import { createChannelsRepo } from './channels.repo.js';
import { createChannelConfigService, createProviderRegistry } from './channels.service.js';
import { createChannelRegistry, REPORT_JOB } from './channels.registry.js';
import { channelsRoutes } from './channels.routes.js';

declare module '../services.js' {
  interface Services {
    channels: ChannelRegistry;
  }
}

/** Channel configuration, adapter registry, provider callbacks and tracked links (channels.md §1, §11). */
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
    ctx.services.channels = reg;
    return {
      routes: channelsRoutes(configs, reg, ctx.services.spaces),
      jobs: { [REPORT_JOB]: reg.reportJob },
      stop: () => reg.closeAll(),
    };
  },
};
