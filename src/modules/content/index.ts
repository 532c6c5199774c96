import type { ModuleDefinition } from '../module.js';
import type { ContentApi } from './content.contract.js';
import { contentMigrations } from './content.migrations.js';
import { contentRoutes } from './content.routes.js';
import { createContentService } from './content.service.js';
import { retentionReader, schedulePurge } from './retention.js';

declare module '../services.js' {
  interface Services {
    content: ContentApi;
  }
}

export const CONTENT_PURGE_JOB = 'content.purge';

/** Content API (spaces-and-billing.md §10; app-messaging.md §6): uploads on local disk. */
export const contentModule: ModuleDefinition = {
  name: 'content',
  migrations: contentMigrations,
  setup(ctx) {
    const service = createContentService(ctx);
    ctx.services.content = service;
    const days = retentionReader(ctx, 'contentDays', 30);
    let stop: (() => void) | undefined;
    return {
      routes: contentRoutes(service, ctx.services.spaces),
      jobs: { [CONTENT_PURGE_JOB]: async () => void (await service.purgeExpired(ctx.clock.now(), days)) },
      start() {
        stop = schedulePurge(ctx, CONTENT_PURGE_JOB);
      },
      stop: () => stop?.(),
    };
  },
};
