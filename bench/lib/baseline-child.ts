/** The bare Fastify baseline (started by `startBaseline`): fixed JSON answers, nothing else. */
import Fastify from 'fastify';
import type { BaselineRoute } from './processes.js';

const routes = JSON.parse(process.env.BASELINE_ROUTES ?? '[]') as BaselineRoute[];
const app = Fastify({ logger: false });
for (const r of routes) {
  app.route({
    method: r.method as 'GET',
    url: r.path,
    handler: async (_request, reply) => {
      if (r.headers) reply.headers(r.headers);
      return reply.code(r.status ?? 200).send(r.body);
    },
  });
}
await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`${(app.server.address() as { port: number }).port}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
