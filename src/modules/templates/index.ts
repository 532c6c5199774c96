import type { ModuleDefinition } from '../module.js';
import { retentionReader, schedulePurge } from '../content/retention.js';
import type { TemplatesApi } from './templates.contract.js';
import { templatesMigrations } from './templates.migrations.js';
import { templatesRoutes } from './templates.routes.js';
import { createTemplatesService } from './templates.service.js';

declare module '../services.js' {
  interface Services {
    templates: TemplatesApi;
  }
}

export const TEMPLATES_PURGE_JOB = 'templates.purge';

/** Message templates (one-api.md §3.10). */
export const templatesModule: ModuleDefinition = {
  name: 'templates',
  migrations: templatesMigrations,
  setup(ctx) {
    const service = createTemplatesService(ctx);
    ctx.services.templates = service;
    const days = retentionReader(ctx, 'deletedProfilesDays', 30);
    let stop: (() => void) | undefined;
    return {
      routes: templatesRoutes(service),
      jobs: { [TEMPLATES_PURGE_JOB]: async () => void (await service.purgeDeleted(ctx.clock.now(), days)) },
      start() {
        stop = schedulePurge(ctx, TEMPLATES_PURGE_JOB);
      },
      stop: () => stop?.(),
    };
  },
};
