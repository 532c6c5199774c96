import type { ModuleDefinition } from '../module.js';
import type { TemplatesApi } from './templates.contract.js';
import { templatesMigrations } from './templates.migrations.js';
import { templatesRoutes } from './templates.routes.js';
import { createTemplatesService } from './templates.service.js';

declare module '../services.js' {
  interface Services {
    templates: TemplatesApi;
  }
}

/** Message templates (one-api.md §3.10). */
export const templatesModule: ModuleDefinition = {
  name: 'templates',
  migrations: templatesMigrations,
  setup(ctx) {
    const service = createTemplatesService(ctx);
    ctx.services.templates = service;
    return { routes: templatesRoutes(service) };
  },
};
