import type { ModuleDefinition } from '../module.js';
import type { ContentApi } from './content.contract.js';
import { contentMigrations } from './content.migrations.js';
import { contentRoutes } from './content.routes.js';
import { createContentService } from './content.service.js';

declare module '../services.js' {
  interface Services {
    content: ContentApi;
  }
}

/** Content API (spaces-and-billing.md §10; app-messaging.md §6): uploads on local disk. */
export const contentModule: ModuleDefinition = {
  name: 'content',
  migrations: contentMigrations,
  setup(ctx) {
    const service = createContentService(ctx);
    ctx.services.content = service;
    return { routes: contentRoutes(service, ctx.services.spaces) };
  },
};
