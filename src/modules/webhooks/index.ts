import type { ModuleDefinition } from '../module.js';
import { webhooksMigrations } from './webhooks.migrations.js';
import { webhooksRoutes } from './webhooks.routes.js';
import { createWebhooksService, type WebhooksService } from './webhooks.service.js';
import { createFanout, type Fanout, type FanoutOptions } from './fanout.js';
import { createDispatcher, type Dispatcher, type DispatcherOptions } from './dispatcher.js';
import { RETRY_DELAYS_MS } from './delivery-policy.js';

declare module '../services.js' {
  interface Services {
    webhooks: WebhooksService & { fanout: Fanout; dispatcher: Dispatcher };
  }
}

export type WebhooksModuleOptions = Partial<FanoutOptions & DispatcherOptions>;

/** Webhook API group and delivery (webhooks.md). Options tune timings (tests, bench). */
export function createWebhooksModule(options: WebhooksModuleOptions = {}): ModuleDefinition {
  return {
    name: 'webhooks',
    migrations: webhooksMigrations,
    setup(ctx) {
      const ref: { dispatcher?: Dispatcher } = {};
      const service = createWebhooksService(ctx, {
        onDeleted: (id) => ref.dispatcher?.cancel(id),
        onQueued: (id) => ref.dispatcher?.notify([id]),
      });
      const dispatcher = createDispatcher(ctx, service.deliveries, {
        retryDelaysMs: options.retryDelaysMs ?? RETRY_DELAYS_MS,
        maxInFlight: options.maxInFlight ?? 4,
        prefetch: options.prefetch ?? 64,
        globalConcurrency: options.globalConcurrency ?? 256,
        refreshMs: options.refreshMs ?? 1000,
      });
      const d = (ref.dispatcher = dispatcher);
      const fanout = createFanout(ctx, service.deliveries, (ids) => d.notify(ids), {
        batchSize: options.batchSize ?? 500,
        gapWaitMs: options.gapWaitMs ?? 1000,
        holeTtlMs: options.holeTtlMs ?? 10 * 60_000,
        idlePollMs: options.idlePollMs ?? 500,
      });
      ctx.services.webhooks = Object.assign(service, { fanout, dispatcher: d });
      return {
        routes: webhooksRoutes(service),
        start() {
          if (!ctx.config.workersEnabled) return;
          d.start();
          fanout.start();
        },
        async stop() {
          await fanout.stop();
          await d.stop();
        },
      };
    },
  };
}

export const webhooksModule: ModuleDefinition = createWebhooksModule();
