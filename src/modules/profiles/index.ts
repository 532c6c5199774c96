import type { ModuleDefinition } from '../module.js';
import { profilesMigrations } from './profiles.migrations.js';
import { createProfilesService, type ProfilesService } from './profiles.service.js';
import { profilesRoutes } from './profiles.routes.js';
import { createExporter } from './profiles.export.js';
import { createImports, IMPORT_JOB } from './profiles.import.js';
import { transferRoutes } from './profiles.transfer.routes.js';
import { createAudiences } from './audiences.service.js';
import { audiencesRoutes } from './audiences.routes.js';

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
    const imports = createImports(ctx, profiles.writer, profiles.statistics);
    const audiences = createAudiences(ctx);
    return {
      routes: async (app) => {
        await profilesRoutes(profiles)(app);
        await transferRoutes(createExporter(ctx), imports)(app);
        await audiencesRoutes(audiences, profiles)(app);
      },
      jobs: { [IMPORT_JOB]: imports.handler },
      stop: () => profiles.close(),
    };
  },
};
