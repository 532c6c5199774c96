import FindMyWay from 'find-my-way';
import type { RouteOptions } from 'fastify';
import type { AuthPolicy } from './auth-policy.js';

/** One registered operation: the stable id used by OpenAPI, logs, metrics and permissions. */
export interface Operation {
  id: string;
  method: string;
  url: string;
  auth: AuthPolicy;
  /** Route schema (for the bad-input corpus). */
  schema: RouteOptions['schema'];
  bodyLimit?: number;
  /** A websocket route (@fastify/websocket): not part of the OpenAPI document. */
  websocket?: boolean;
}

/**
 * Collects every route as it is registered and answers "which methods exist for this path"
 * (405 with `Allow` instead of 404).
 */
export class OperationRegistry {
  readonly operations: Operation[] = [];
  private readonly router = FindMyWay({ caseSensitive: false, ignoreTrailingSlash: true });

  add(route: RouteOptions): void {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const schema = route.schema as { operationId?: string; hide?: boolean } | undefined;
    const auth = (route.config as { auth?: AuthPolicy } | undefined)?.auth;
    for (const method of methods) {
      if (method === 'HEAD' || method === 'OPTIONS') continue;
      try {
        this.router.on(method as never, route.url, () => {});
      } catch {}
      if (schema?.hide || !schema?.operationId) continue;
      if (!auth) throw new Error(`route ${method} ${route.url} has no config.auth`);
      const websocket = (route as { websocket?: boolean }).websocket === true || undefined;
      this.operations.push({ id: schema.operationId, method, url: route.url, auth, schema: route.schema, bodyLimit: route.bodyLimit, websocket });
    }
  }

  allowedMethods(path: string): string[] {
    const out: string[] = [];
    for (const m of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) if (this.router.find(m as never, path)) out.push(m);
    return out;
  }
}
