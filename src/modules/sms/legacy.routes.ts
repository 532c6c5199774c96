/**
 * The optional legacy SMS endpoint (sms.md §9, `LEGACY_SMS_ENABLED`): `POST /webapi/sms` with
 * Verify's credentials; each item becomes a One API send with `rules: ["sms"]`.
 */
import { Type } from '@sinclair/typebox';
import type { App } from '../module.js';
import type { Credentials } from '../../auth/credentials.js';
import type { SpaceDirectory } from '../../auth/space-directory.js';
import type { MessagesApi } from '../messages/messages.contract.js';
import { AppError, errors, type ValidationFailure } from '../../http/errors.js';
import { errorResponses } from '../../http/schemas.js';
import { parseDateTime } from '../../lib/clock.js';
import { verifyCaller } from '../verify/verify.routes.js';
import { VerifyError } from '../verify/verify.errors.js';

const Item = Type.Object({
  to: Type.String(), from: Type.Optional(Type.String()), body: Type.String(), deliverAfter: Type.Optional(Type.String()),
  validUntil: Type.Optional(Type.String()), clientRef: Type.Optional(Type.String()), allowUnicode: Type.Optional(Type.Boolean()),
}, { additionalProperties: true });
const Accepted = Type.Array(Type.Object({ messageId: Type.String(), clientRef: Type.Optional(Type.String()), to: Type.String() }));

export function legacySmsRoutes(messages: () => MessagesApi | undefined, credentials: Credentials, spaces: SpaceDirectory) {
  return async (app: App) => {
    app.post('/webapi/sms', {
      schema: { operationId: 'sms.legacy.send', tags: ['SMS'], summary: 'Legacy SMS send (one item or an array of up to 1000)', body: Type.Union([Item, Type.Array(Item, { minItems: 1, maxItems: 1000 })]), response: { 202: Accepted, ...errorResponses() } },
      config: { auth: { kind: 'none' as const } },
    }, async (request, reply) => {
      let caller: Awaited<ReturnType<typeof verifyCaller>>;
      try {
        caller = await verifyCaller(request.headers.authorization, credentials, spaces);
      } catch (err) {
        if (err instanceof VerifyError) throw err.status === 401 ? errors.unauthorized() : errors.forbidden(err.problems[0]?.description);
        throw err;
      }
      const api = messages();
      if (!api) throw errors.unavailable('Messaging is not available');
      const batch = Array.isArray(request.body) ? request.body : [request.body];
      const failures: ValidationFailure[] = [];
      batch.forEach((item, index) => {
        if (!/^\+?\d{4,15}$/.test(item.to.replace(/[\s()-]/g, ''))) failures.push({ paramName: 'to', message: 'Not a valid international phone number', index });
        if (!item.body) failures.push({ paramName: 'body', message: 'Required', index });
        for (const k of ['deliverAfter', 'validUntil'] as const) if (item[k] !== undefined && parseDateTime(item[k]!) === undefined) failures.push({ paramName: k, message: 'Must be an RFC 3339 date-time', index });
      });
      if (failures.length) throw errors.validation(failures);
      const out = [];
      for (const [index, item] of batch.entries()) {
        const to = item.to.replace(/[\s()+-]/g, '');
        // customBody and channelOptions exclude each other: with scheduling or a client reference
        // the whole SMS goes as a custom body (the adapters read allowUnicode from it too).
        const custom = item.deliverAfter || item.clientRef;
        const options = { ...(item.from ? { from: item.from } : {}), ...(item.allowUnicode !== undefined ? { allowUnicode: item.allowUnicode } : {}) };
        try {
          const sent = await api.send(caller.apiSpaceId, caller.actor, {
            to: { phoneNumber: to }, rules: ['sms'], body: item.body,
            ...(custom
              ? { customBody: { sms: { ...options, body: item.body, ...(item.deliverAfter ? { deliverAfter: item.deliverAfter } : {}), ...(item.clientRef ? { clientRef: item.clientRef } : {}) } } }
              : Object.keys(options).length ? { channelOptions: { sms: options } } : {}),
            ...(item.validUntil ? { expiresOn: item.validUntil } : {}),
          });
          out.push({ messageId: sent.messageId, ...(item.clientRef ? { clientRef: item.clientRef } : {}), to });
        } catch (err) {
          if (err instanceof AppError && err.validationFailures) throw errors.validation(err.validationFailures.map((f) => ({ ...f, index })));
          throw err;
        }
      }
      return reply.code(202).send(out);
    });
  };
}
