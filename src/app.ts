import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import websocket from '@fastify/websocket';
import { Histogram } from 'prom-client';
import type { Container } from './container.js';
import { frameworkErrorHandler, sendError } from './http/error-handler.js';
import { errors } from './http/errors.js';
import { registerBodyParsers, registerTransportHeaders, parseQueryString, requestIdFrom } from './http/transport.js';
import { createAuthHook } from './http/auth-policy.js';
import { createRateLimitHook } from './http/rate-limit.js';
import { OperationRegistry } from './http/operations.js';
import { createValidatorCompiler } from './http/validation.js';
import { registerSystemRoutes } from './http/system.routes.js';
import { collectStartupGarbage } from './lib/heap.js';

export type AppInstance = FastifyInstance & { operations: OperationRegistry };

/** Builds the HTTP application from a container (tests use it with `app.inject`). */
export async function buildApp(container: Container): Promise<AppInstance> {
  const { platform, modules } = container;
  const app = Fastify({
    loggerInstance: platform.log,
    bodyLimit: 1024 * 1024,
    genReqId: (req) => requestIdFrom(req.headers['x-request-id'], () => platform.ids.uuid()),
    // Per-request access lines are off (errors are logged by the error handler with the request id).
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    routerOptions: {
      caseSensitive: false,
      ignoreTrailingSlash: true,
      querystringParser: (qs: string) => parseQueryString(qs),
      maxParamLength: 1024,
    },
    frameworkErrors: frameworkErrorHandler,
    forceCloseConnections: true,
    // Behind a reverse proxy the client IP (per-IP rate limits) comes from X-Forwarded-For.
    trustProxy: platform.config.trustProxy,
    return503OnClosing: true,
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as FastifyInstance;

  app.setValidatorCompiler(createValidatorCompiler());

  const operations = new OperationRegistry();
  app.decorate('operations', operations);
  app.addHook('onRoute', (route) => operations.add(route as never));
  app.decorateRequest('actor', null as never);
  app.decorateRequest('space', null as never);

  registerBodyParsers(app);
  registerTransportHeaders(app, platform.config);
  app.setErrorHandler((err, request, reply) => sendError(request, reply, err));
  app.setNotFoundHandler((request, reply) => {
    const allow = operations.allowedMethods(request.url.split('?')[0]!);
    return sendError(request, reply, allow.length ? errors.methodNotAllowed(allow) : errors.notFound('Route'));
  });

  const latency = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency by operation id',
    labelNames: ['operation', 'method', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [platform.metrics],
  });
  // A callback hook (an async one costs a promise per request), and one histogram child per
  // operation, method and status (prom-client builds a key from a labels object on every observe).
  const observers = new Map<string, (seconds: number) => void>();
  app.addHook('onResponse', (request, reply, done) => {
    const op = (request.routeOptions.schema as { operationId?: string } | undefined)?.operationId ?? 'unknown';
    const key = `${op} ${request.method} ${reply.statusCode}`;
    let observe = observers.get(key);
    if (!observe) {
      const child = latency.labels(op, request.method, String(reply.statusCode));
      observers.set(key, (observe = (seconds) => child.observe(seconds)));
    }
    observe(reply.elapsedTime / 1000);
    done();
  });

  app.addHook('onRequest', createAuthHook({ credentials: container.credentials, spaces: container.spaces }));
  // After auth: the buckets are per credential and per API space (conventions.md §9.2).
  app.addHook('onRequest', createRateLimitHook({ config: platform.config, clock: platform.clock, metrics: platform.metrics }));

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Switchboard', version: '0.1.0', description: 'Self-hostable Enterprise Communications API (Comapi-compatible).' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', deepLinking: true } });
  // Shutdown closes open sockets with 1001 "going away" (app-messaging.md §7.3), not the plugin's bare close.
  await app.register(websocket, {
    options: { maxPayload: 1024 * 1024 },
    preClose(done) {
      const server = (this as unknown as { websocketServer: import('ws').WebSocketServer }).websocketServer;
      for (const client of server.clients) client.close(1001, 'server shutting down');
      server.close();
      done();
    },
  });

  registerSystemRoutes(app, container);
  for (const m of modules) if (m.instance.routes) await app.register(async (scope) => m.instance.routes!(scope as never));
  // Once the server listens, start-up is over: its garbage goes before the first request (src/lib/heap.ts).
  app.addHook('onListen', (done) => {
    collectStartupGarbage();
    done();
  });
  await app.ready();
  return app as unknown as AppInstance;
}
