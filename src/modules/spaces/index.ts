import type { ModuleDefinition } from '../module.js';
import { createSpaceSettings, type SpaceSettings } from '../../storage/space-settings.js';
import { spacesRoutes } from './spaces.routes.js';
import { createSpacesService, type SpacesService } from './spaces.service.js';
import { createAccessTokensService, type AccessTokensService } from './access-tokens.service.js';
import { createPushService, type PushService } from './push.service.js';
import { pushRoutes } from './push.routes.js';

declare module '../services.js' {
  interface Services {
    settings: SpaceSettings;
    apiSpaces: SpacesService;
    accessTokens: AccessTokensService;
    /** Push credentials (`credentialsFor`, `apnsFor`, `fcmFor`) for the push channel adapters. */
    push: PushService;
  }
}

export const spacesModule: ModuleDefinition = {
  name: 'spaces',
  setup(ctx) {
    const settings = createSpaceSettings(ctx.db, ctx.clock);
    const apiSpaces = createSpacesService(ctx, { settings, directory: ctx.services.spaces });
    const accessTokens = createAccessTokensService(ctx, ctx.services.credentials);
    const push = createPushService(ctx, settings);
    Object.assign(ctx.services, { settings, apiSpaces, accessTokens, push });
    const routes = [spacesRoutes(apiSpaces, accessTokens), pushRoutes(push)];
    return { routes: async (app) => { for (const r of routes) await r(app); } };
  },
};
