import type { ModuleDefinition } from '../module.js';
import { pnvMigrations } from './pnv.migrations.js';
import { BULK_JOB, createPnvService } from './pnv.service.js';
import { pnvRoutes } from './pnv.routes.js';

/** Phone Number Validation (phone-validation.md): single lookups and bulk CSV jobs. */
export const pnvModule: ModuleDefinition = {
  name: 'pnv',
  migrations: pnvMigrations,
  setup(ctx) {
    const service = createPnvService(ctx);
    return { routes: pnvRoutes(service), jobs: { [BULK_JOB]: (jobCtx) => service.runJob(jobCtx) } };
  },
};
