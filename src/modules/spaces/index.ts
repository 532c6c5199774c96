import type { ModuleDefinition } from '../module.js';
import { createSpaceSettings, type SpaceSettings } from '../../storage/space-settings.js';
import { spacesRoutes } from './spaces.routes.js';
import { createSpacesService, type SpacesService } from './spaces.service.js';
import { createAccessTokensService, type AccessTokensService } from './access-tokens.service.js';

declare module '../services.js' {
  interface Services {
    settings: SpaceSettings;
    apiSpaces: SpacesService;
    accessTokens: AccessTokensService;
  }
}

export const spacesModule: ModuleDefinition = {
  name: 'spaces',
  setup(ctx) {
    const settings = createSpaceSettings(ctx.db, ctx.clock);
    const apiSpaces = createSpacesService(ctx, { settings, directory: ctx.services.spaces });
    const accessTokens = createAccessTokensService(ctx, ctx.services.credentials);
    Object.assign(ctx.services, { settings, apiSpaces, accessTokens });
    return { routes: spacesRoutes(apiSpaces, accessTokens) };
  },
};
