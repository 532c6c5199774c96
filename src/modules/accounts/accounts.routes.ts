import { Type } from '@sinclair/typebox';
import type { App } from '../module.js';
import { errorResponses } from '../../http/schemas.js';
import { errors } from '../../http/errors.js';
import type { AccountsService } from './accounts.service.js';
import { AccountParams, AuthenticateBody, AuthenticateResponse, CreateUserBody, UpdateUserBody, User, UserParams } from './accounts.schemas.js';

const admin = { auth: { kind: 'account' as const, admin: true } };

export function accountsRoutes(service: AccountsService) {
  return async (app: App) => {
    app.post('/authenticate', {
      schema: { operationId: 'accounts.authenticate', tags: ['Accounts'], summary: 'Obtain an account token (2 hours)', security: [], body: AuthenticateBody, response: { 200: AuthenticateResponse, ...errorResponses(429) } },
      config: { auth: { kind: 'none' } },
    }, async (request) => {
      const username = request.body.username ?? request.body.emailAddress;
      if (!username) throw errors.invalidField('username', 'username is required');
      return service.authenticate(username, request.body.password);
    });

    app.get('/accounts/:accountId/users', {
      schema: { operationId: 'users.list', tags: ['Accounts'], summary: 'List users', params: AccountParams, response: { 200: Type.Array(User), ...errorResponses() } },
      config: admin,
    }, async (request) => service.listUsers(Number(request.params.accountId)));

    app.post('/accounts/:accountId/users', {
      schema: { operationId: 'users.create', tags: ['Accounts'], summary: 'Create a user', params: AccountParams, body: CreateUserBody, response: { 201: User, ...errorResponses(409) } },
      config: admin,
    }, async (request, reply) => {
      const user = await service.createUser(Number(request.params.accountId), request.body);
      return reply.code(201).header('Location', `/accounts/${request.params.accountId}/users/${encodeURIComponent(user.username)}`).send(user);
    });

    app.put('/accounts/:accountId/users/:username', {
      schema: { operationId: 'users.update', tags: ['Accounts'], summary: 'Update a user', params: UserParams, body: UpdateUserBody, response: { 200: User, ...errorResponses(404, 409) } },
      config: admin,
    }, async (request) => service.updateUser(Number(request.params.accountId), request.params.username, request.body));

    app.delete('/accounts/:accountId/users/:username', {
      schema: { operationId: 'users.delete', tags: ['Accounts'], summary: 'Delete a user', params: UserParams, response: { 204: Type.Null(), ...errorResponses(404, 409) } },
      config: admin,
    }, async (request, reply) => {
      await service.deleteUser(Number(request.params.accountId), request.params.username);
      return reply.code(204).send(null);
    });
  };
}
