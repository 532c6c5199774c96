import type { Container } from '../../src/container.js';
import { moduleDefinitions } from '../../src/modules/index.js';
import { createWebhooksModule, type WebhooksModuleOptions } from '../../src/modules/webhooks/index.js';

/** The module list with the webhooks module tuned for tests (short retry schedule, fast refresh). */
export function fastWebhookModules(options: WebhooksModuleOptions = {}) {
  const fast = createWebhooksModule({ retryDelaysMs: Array(17).fill(60), refreshMs: 100, gapWaitMs: 200, ...options });
  return moduleDefinitions.map((m) => (m.name === 'webhooks' ? fast : m));
}

/** Appends a domain event the way other modules do (one transaction, after-commit wake-up). */
export function appendEvent(container: Container, apiSpaceId: string, name: string, payload: unknown, meta: Record<string, unknown> = {}) {
  const p = container.platform;
  return p.transaction((uow) => p.events.append(uow, { apiSpaceId, accountId: 1, name, payload, meta }));
}
