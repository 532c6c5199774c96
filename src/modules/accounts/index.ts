import type { ModuleDefinition } from '../module.js';
import { accountsRoutes } from './accounts.routes.js';
import { createAccountsService, type AccountsService } from './accounts.service.js';

declare module '../services.js' {
  interface Services {
    accounts: AccountsService;
  }
}

export const accountsModule: ModuleDefinition = {
  name: 'accounts',
  async setup(ctx) {
    const service = createAccountsService(ctx, ctx.services.credentials);
    await service.bootstrap();
    ctx.services.accounts = service;
    return { routes: accountsRoutes(service) };
  },
};
