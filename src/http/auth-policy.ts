import type { FastifyRequest } from 'fastify';
import type { Actor } from '../auth/actor.js';
import type { Credentials } from '../auth/credentials.js';
import type { SpaceDirectory, SpaceRef } from '../auth/space-directory.js';
import { AGENT_PERMISSIONS, grants } from '../auth/permissions.js';
import { normaliseSpaceId } from '../lib/ids.js';
import { errors } from './errors.js';

/**
 * Declared on every route as `config.auth` (authorisation as structure):
 * - `none`: no credential is evaluated.
 * - `account`: account tokens (and static admin tokens); `admin` restricts to the admin role.
 *   A path `accountId` must be the caller's account; a path `apiSpaceId`/`id` must be a space of it
 *   (management routes; `apisRo` also admits an access token of that space holding `apis:ro`).
 * - `space`: per-space routes. Access tokens need `permission` (any of a list); account tokens
 *   pass as admins (agents only with `agent`), session tokens only with `session`.
 */
export type AuthPolicy =
  | { kind: 'none' }
  | { kind: 'account'; admin?: boolean; apisRo?: boolean; spaceParam?: string }
  | { kind: 'space'; permission?: string | readonly string[]; session?: boolean; agent?: boolean; adminOnly?: boolean };

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: AuthPolicy;
  }
  interface FastifyRequest {
    actor: Actor;
    space: SpaceRef;
  }
}

function permits(actor: Actor, permission: string | readonly string[] | undefined, agentAllowed: boolean): boolean {
  const required = permission === undefined ? [] : typeof permission === 'string' ? [permission] : permission;
  if (actor.kind === 'admin' || (actor.kind === 'user' && actor.role === 'admin')) return true;
  if (actor.kind === 'user') return agentAllowed && (required.length === 0 || required.some((p) => AGENT_PERMISSIONS.has(p)));
  if (actor.kind === 'access') return required.length > 0 && required.some((p) => grants(actor.permissions ?? new Set(), p));
  return false;
}

export function createAuthHook(deps: { credentials: Credentials; spaces: SpaceDirectory }) {
  const { credentials, spaces } = deps;
  return async function authHook(request: FastifyRequest): Promise<void> {
    const policy = request.routeOptions.config?.auth;
    if (!policy || policy.kind === 'none') return;
    const actor = await credentials.authenticate(request.headers.authorization);
    if (!actor) throw errors.unauthorized();
    request.actor = actor;
    const params = (request.params ?? {}) as Record<string, string>;

    if (policy.kind === 'account') {
      if (params.accountId !== undefined && String(actor.accountId) !== params.accountId) throw errors.forbidden('This credential belongs to another account');
      const rawSpace = params[policy.spaceParam ?? 'apiSpaceId'];
      if (actor.kind === 'access' || actor.kind === 'session') {
        if (!policy.apisRo || actor.kind !== 'access' || !actor.permissions?.has('apis:ro')) throw errors.forbidden('This operation needs an account token');
        if (rawSpace !== undefined && normaliseSpaceId(rawSpace) !== actor.apiSpaceId) throw errors.forbidden('This token belongs to another API space');
      } else if (policy.admin && actor.role !== 'admin') {
        throw errors.forbidden('This operation needs an admin user');
      }
      if (rawSpace !== undefined) {
        const id = normaliseSpaceId(rawSpace);
        const space = id ? await spaces.get(id) : undefined;
        if (!space) throw errors.notFound('API space');
        if (space.accountId !== actor.accountId) throw errors.forbidden('This API space belongs to another account');
        request.space = space;
      }
      return;
    }

    const id = normaliseSpaceId(params.apiSpaceId ?? '');
    if (actor.apiSpaceId !== undefined && actor.apiSpaceId !== id) throw errors.forbidden('This token belongs to another API space');
    const space = id ? await spaces.get(id) : undefined;
    if (!space) throw errors.notFound('API space');
    if (space.accountId !== actor.accountId) throw errors.forbidden('This API space belongs to another account');
    request.space = space;
    if (actor.kind === 'session') {
      if (!policy.session) throw errors.forbidden('A session token cannot use this operation');
      return;
    }
    if (policy.adminOnly && !(actor.kind === 'admin' || actor.role === 'admin')) throw errors.forbidden('This operation needs an admin user');
    if (!permits(actor, policy.permission, policy.agent ?? false)) throw errors.forbidden();
  };
}
