import { Type } from '@sinclair/typebox';
import type { App } from '../module.js';
import { errorResponses, SpaceParams } from '../../http/schemas.js';
import { errors } from '../../http/errors.js';
import { clientIdProblem } from '../../lib/ids.js';
import type { FacebookStates } from './facebook-state.js';

const StateBody = Type.Object({
  profileId: Type.Optional(Type.String({ description: 'Required for access and account tokens; a session uses its own profile' })),
  data: Type.Optional(Type.String({ description: 'Extra data for the profile, reported as `stateData` in `facebook.optin`; a JSON object in string form is merged into the profile at opt-in' })),
}, { additionalProperties: true });

/** `POST /channels/facebook/state` (spaces-and-billing.md §11): the Messenger opt-in `data-ref`. */
export function facebookStateRoutes(states: FacebookStates) {
  return async (app: App) => {
    app.post('/apispaces/:apiSpaceId/channels/facebook/state', {
      schema: {
        operationId: 'channels.facebook.state', tags: ['Facebook'], summary: 'Create the Messenger opt-in string (data-ref) for a profile',
        params: SpaceParams, body: StateBody, response: { 200: Type.String({ description: 'The opaque data-ref string' }), ...errorResponses(404) },
      },
      config: { auth: { kind: 'space', permission: 'fb:state:wa', session: true } },
    }, async (request, reply) => {
      const body = request.body ?? {};
      let profileId = body.profileId;
      if (request.actor.kind === 'session') {
        if (profileId !== undefined && profileId !== request.actor.profileId) throw errors.forbidden('A session can create opt-in data for its own profile only');
        profileId = request.actor.profileId;
      }
      if (profileId === undefined) throw errors.invalidField('profileId', 'Required');
      const problem = clientIdProblem(profileId);
      if (problem) throw errors.invalidField('profileId', problem);
      const state = states.encode({ apiSpaceId: request.space.id, profileId, ...(body.data !== undefined ? { data: body.data } : {}) });
      if (state === undefined) throw errors.invalidField('data', 'Too long: the opt-in string would be over the 250 characters Facebook allows');
      // A JSON string (spaces-and-billing.md §11): the SDK's JSON client hands back the plain value.
      return reply.type('application/json; charset=utf-8').send(JSON.stringify(state));
    });
  };
}
