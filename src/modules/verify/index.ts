import type { ModuleDefinition } from '../module.js';
import { verifyMigrations } from './verify.migrations.js';
import { createVerifyService, EXPIRE_JOB } from './verify.service.js';
import { verifyRoutes } from './verify.routes.js';
import { createIdempotency } from '../../http/idempotency.js';

/** The Verify API (verify.md) at `/webapi/verify`. */
export const verifyModule: ModuleDefinition = {
  name: 'verify',
  migrations: verifyMigrations,
  setup(ctx) {
    const service = createVerifyService(ctx);
    return {
      routes: verifyRoutes(service, ctx.services.credentials, ctx.services.spaces, createIdempotency({ db: ctx.db, clock: ctx.clock }), (fn) => ctx.transaction(fn)),
      jobs: {
        [EXPIRE_JOB]: async ({ job }) => {
          if (job.apiSpaceId) await service.expire(job.apiSpaceId, String(job.payload.requestId));
        },
      },
    };
  },
};
