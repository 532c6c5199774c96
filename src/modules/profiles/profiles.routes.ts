import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import type { App } from '../module.js';
import { errorResponses, SpaceParams, NoContent } from '../../http/schemas.js';
import { errors } from '../../http/errors.js';
import type { ProfileRead } from './profiles.contract.js';
import type { ProfilesService } from './profiles.service.js';
import { parseProfileQuery } from './profiles.query.js';
import {
  BulkBody, BulkDeleteQuery, BulkDeleteResult, BulkResult, DeleteQuery, DeviceParams, FilterQuery, LinkParams, OptInBody, OptInDefaults,
  OptInDefaultsBody, OptOutQuery, PatchQuery, Profile, ProfileInput, ProfileParams, PushValidationBody, PushValidationResult, PutQuery,
  ReadQuery, SchemaSummary, queryBool, queryList,
} from './profiles.schemas.js';

const tags = ['Profiles'];
const read = { auth: { kind: 'space' as const, permission: 'prof:ra', session: true, agent: true } };
const writeOwn = { auth: { kind: 'space' as const, permission: 'prof:wa', session: true, agent: true } };
const write = { auth: { kind: 'space' as const, permission: 'prof:wa', agent: true } };
const del = { auth: { kind: 'space' as const, permission: 'prof:da' } };

function sendProfile(reply: FastifyReply, r: ProfileRead, code = 200) {
  return reply.code(code).header('ETag', r.etag).header('Last-Modified', String(r.profile._updatedOn)).send(r.profile);
}

export function profilesRoutes(service: ProfilesService) {
  return async (app: App) => {
    app.get('/apispaces/:apiSpaceId/profiles', {
      schema: { operationId: 'profiles.query', tags, summary: 'Query profiles', params: SpaceParams, querystring: FilterQuery,
        response: { 200: Type.Union([Type.Array(Profile), SchemaSummary]), ...errorResponses(404) } },
      config: read,
    }, async (request, reply) => {
      const parsed = parseProfileQuery(request.query as Record<string, string | string[]>);
      if (parsed.controls.schemaOnly) return service.schemaSummary(request.space.id, parsed.filters);
      const { items, total } = await service.query(request.actor, request.space.id, parsed);
      return reply.header('X-Total-Count', String(total)).send(items);
    });

    app.post('/apispaces/:apiSpaceId/profiles', {
      schema: { operationId: 'profiles.create', tags, summary: 'Create a profile', params: SpaceParams, body: ProfileInput, response: { 201: Profile, ...errorResponses(404, 409) } },
      config: write,
    }, async (request, reply) => {
      const r = await service.create(request.actor, request.space.id, request.body as Record<string, unknown>);
      reply.header('Location', `/apispaces/${request.space.id}/profiles/${encodeURIComponent(r.profile.id)}`);
      return sendProfile(reply, r, 201);
    });

    app.patch('/apispaces/:apiSpaceId/profiles/bulk', {
      schema: { operationId: 'profiles.bulkUpsert', tags, summary: 'Create or merge many profiles', params: SpaceParams, body: BulkBody, response: { 200: BulkResult, ...errorResponses(404) } },
      config: write,
      bodyLimit: 10_000_000,
    }, async (request) => service.bulkUpsert(request.actor, request.space.id, request.body as unknown[]));

    app.delete('/apispaces/:apiSpaceId/profiles/bulk', {
      schema: { operationId: 'profiles.bulkDelete', tags, summary: 'Delete many profiles', params: SpaceParams, querystring: BulkDeleteQuery, response: { 200: BulkDeleteResult, ...errorResponses(404) } },
      config: del,
    }, async (request) => {
      const ids = queryList((request.query as { id: string | string[] }).id);
      if (ids.length < 1 || ids.length > 1000) throw errors.invalidField('query.id', 'Give 1 to 1000 profile ids');
      return service.bulkDelete(request.actor, request.space.id, ids);
    });

    app.get('/apispaces/:apiSpaceId/profiles/optin', {
      schema: { operationId: 'profiles.optinDefaults.get', tags, summary: 'Read the default opt-in per channel', params: SpaceParams, response: { 200: OptInDefaults, ...errorResponses(404) } },
      config: { auth: { kind: 'space' as const, permission: 'prof:ra', agent: true } },
    }, async (request) => service.optIn.defaults(request.space.id));

    app.put('/apispaces/:apiSpaceId/profiles/optin', {
      schema: { operationId: 'profiles.optinDefaults.put', tags, summary: 'Change the default opt-in per channel', params: SpaceParams, body: OptInDefaultsBody, response: { 200: OptInDefaults, ...errorResponses(404) } },
      config: { auth: { kind: 'space' as const, permission: 'prof:wa' } },
    }, async (request) => service.optIn.putDefaults(request.actor, request.space.id, request.body as Record<string, unknown>));

    app.post('/apispaces/:apiSpaceId/profiles/devices/push/validation', {
      schema: { operationId: 'profiles.pushValidation', tags, summary: 'Which profiles can receive push', params: SpaceParams, body: PushValidationBody, response: { 200: PushValidationResult, ...errorResponses(404) } },
      config: { auth: { kind: 'space' as const, permission: 'prof:ra', agent: true } },
    }, async (request) => service.pushValidation(request.space.id, request.body.ids));

    app.get('/apispaces/:apiSpaceId/profiles/:id', {
      schema: { operationId: 'profiles.get', tags, summary: 'Read a profile', params: ProfileParams, querystring: ReadQuery, response: { 200: Profile, ...errorResponses(404) } },
      config: read,
    }, async (request, reply) => {
      const includeDeleted = queryBool((request.query as { includeDeleted?: string }).includeDeleted, 'includeDeleted');
      return sendProfile(reply, await service.read(request.actor, request.space.id, request.params.id, includeDeleted));
    });

    app.put('/apispaces/:apiSpaceId/profiles/:id', {
      schema: { operationId: 'profiles.replace', tags, summary: 'Replace or undelete a profile', params: ProfileParams, querystring: PutQuery, body: Type.Unknown({ description: 'The complete profile (optional with undelete=true)' }),
        response: { 200: Profile, ...errorResponses(404, 409, 412) } },
      config: writeOwn,
    }, async (request, reply) => {
      const body = request.body;
      if (body !== undefined && (body === null || typeof body !== 'object' || Array.isArray(body))) throw errors.invalidField('body', 'Must be an object');
      const undelete = queryBool((request.query as { undelete?: string }).undelete, 'undelete');
      return sendProfile(reply, await service.replace(request.actor, request.space.id, request.params.id, body as Record<string, unknown> | undefined, { undelete, ifMatch: request.headers['if-match'] }));
    });

    app.patch('/apispaces/:apiSpaceId/profiles/:id', {
      schema: { operationId: 'profiles.patch', tags, summary: 'Merge properties into a profile', params: ProfileParams, querystring: PatchQuery, body: ProfileInput,
        response: { 200: Profile, ...errorResponses(404, 409, 412) } },
      config: writeOwn,
    }, async (request, reply) => {
      const q = request.query as { allowcreate?: string; deletes?: string | string[] };
      const r = await service.patch(request.actor, request.space.id, request.params.id, request.body as Record<string, unknown>, {
        allowCreate: queryBool(q.allowcreate, 'allowcreate'), deletes: queryList(q.deletes), ifMatch: request.headers['if-match'],
      });
      return sendProfile(reply, r);
    });

    app.delete('/apispaces/:apiSpaceId/profiles/:id', {
      schema: { operationId: 'profiles.delete', tags, summary: 'Delete or forget a profile', params: ProfileParams, querystring: DeleteQuery, response: { 204: NoContent, ...errorResponses(404, 409, 412) } },
      config: del,
    }, async (request, reply) => {
      const forget = queryBool((request.query as { forget?: string }).forget, 'forget');
      await service.remove(request.actor, request.space.id, request.params.id, { forget, ifMatch: request.headers['if-match'] });
      return reply.code(204).send(null);
    });

    app.put('/apispaces/:apiSpaceId/profiles/:id/optin', {
      schema: { operationId: 'profiles.optin', tags, summary: 'Opt a profile in to channels', params: ProfileParams, body: OptInBody, response: { 200: Profile, ...errorResponses(404) } },
      config: write,
    }, async (request, reply) => sendProfile(reply, await service.optIn.optIn(request.actor, request.space.id, request.params.id, request.body.channels)));

    app.delete('/apispaces/:apiSpaceId/profiles/:id/optin', {
      schema: { operationId: 'profiles.optout', tags, summary: 'Opt a profile out of channels', params: ProfileParams, querystring: OptOutQuery, response: { 200: Profile, ...errorResponses(404) } },
      config: write,
    }, async (request, reply) => {
      const channels = queryList((request.query as { channel?: string | string[] }).channel);
      return sendProfile(reply, await service.optIn.optOut(request.actor, request.space.id, request.params.id, channels.length ? channels : undefined));
    });

    const rel = (method: 'put' | 'delete', kind: 'primary' | 'link', summary: string) =>
      app[method](`/apispaces/:apiSpaceId/profiles/:id/rels/${kind}/:linkedId`, {
        schema: { operationId: `profiles.rels.${kind}.${method === 'put' ? 'set' : 'remove'}`, tags, summary, params: LinkParams, response: { 200: Profile, ...errorResponses(404, 409) } },
        config: write,
      }, async (request, reply) => {
        const { id, linkedId } = request.params as { id: string; linkedId: string };
        const [child, primary] = kind === 'primary' ? [id, linkedId] : [linkedId, id];
        const r = method === 'put'
          ? await service.link(request.actor, request.space.id, child, primary, id)
          : await service.unlink(request.actor, request.space.id, child, primary, id);
        return sendProfile(reply, r);
      });
    rel('put', 'primary', 'Make linkedId the primary of this profile');
    rel('delete', 'primary', 'Remove the link to the primary');
    rel('put', 'link', 'Make linkedId a child of this profile');
    rel('delete', 'link', 'Remove a child link');

    app.delete('/apispaces/:apiSpaceId/profiles/:id/devices/:deviceId', {
      schema: { operationId: 'profiles.devices.delete', tags, summary: 'Remove a device and end its sessions', params: DeviceParams, response: { 204: NoContent, ...errorResponses(404) } },
      config: { auth: { kind: 'space' as const, permission: ['prof:wa', 'sess:da'] } },
    }, async (request, reply) => {
      await service.removeDevice(request.space.id, request.params.id, request.params.deviceId);
      return reply.code(204).send(null);
    });
  };
}
