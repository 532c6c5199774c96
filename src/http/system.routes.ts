import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import type { Container } from '../container.js';
import { errors } from './errors.js';

/** Health, readiness, metrics and the generated OpenAPI document. */
export function registerSystemRoutes(app: FastifyInstance, container: Container): void {
  const { platform } = container;
  const none = { auth: { kind: 'none' as const } };
  const hidden = { hide: true };
  app.get('/healthz', { schema: hidden, config: none }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: hidden, config: none }, async () => {
    if (container.state.closing) throw errors.unavailable('Shutting down');
    try {
      await sql`SELECT 1`.execute(platform.db);
    } catch {
      throw errors.unavailable('Database unavailable');
    }
    return { status: 'ready', database: platform.handle.dialect };
  });
  app.get('/metrics', { schema: hidden, config: none }, async (_req, reply) => {
    reply.type(platform.metrics.contentType);
    return container.metrics();
  });
  app.get('/openapi.json', { schema: hidden, config: none }, async () => (app as unknown as { swagger(): unknown }).swagger());
}
