import type { ModuleDefinition } from '../module.js';
import { profilesMigrations } from './profiles.migrations.js';
import { createProfilesService, type ProfilesService } from './profiles.service.js';
import { profilesRoutes } from './profiles.routes.js';

declare module '../services.js' {
  interface Services {
    profiles: ProfilesService;
  }
}

export const profilesModule: ModuleDefinition = {
  name: 'profiles',
  migrations: profilesMigrations,
  setup(ctx) {
    const profiles = createProfilesService(ctx);
    ctx.services.profiles = profiles;
    // Creating an access token creates its identity as a system profile.
    ctx.services.accessTokens.setProfileEnsurer((apiSpaceId, profileId, actor) => profiles.ensureSystemProfile(apiSpaceId, profileId, actor));
    return {
      routes: async (app) => {
        await profilesRoutes(profiles)(app);
      },
    };
  },
};
