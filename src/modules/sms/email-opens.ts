/**
 * E-mail open tracking (channels.md §4, `trackOpens`, off by default): a 1×1 GIF at
 * `/apispaces/{apiSpaceId}/channels/email/opens/{messageId}?s={signature}` whose fetch marks the
 * message `read`. No credential (mail clients fetch it); an HMAC over space and message id stops
 * anyone from marking arbitrary messages read.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { App } from '../module.js';
import type { MessagesApi } from '../messages/messages.contract.js';
import type { SpaceDirectory } from '../../auth/space-directory.js';
import { normaliseSpaceId } from '../../lib/ids.js';
import { errorResponses } from '../../http/schemas.js';

const GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

export function openSignature(key: string, apiSpaceId: string, messageId: string): string {
  return createHmac('sha256', key).update(`email-open:${apiSpaceId}:${messageId}`).digest('base64url').slice(0, 22);
}

export function openPixelUrl(baseUrl: string, key: string) {
  return (apiSpaceId: string, messageId: string) =>
    `${baseUrl}/apispaces/${apiSpaceId}/channels/email/opens/${encodeURIComponent(messageId)}?s=${openSignature(key, apiSpaceId, messageId)}`;
}

export function emailOpenRoutes(key: string, messages: () => MessagesApi | undefined, spaces: SpaceDirectory, now: () => number) {
  return async (app: App) => {
    app.get('/apispaces/:apiSpaceId/channels/email/opens/:messageId', {
      schema: {
        operationId: 'email.open', tags: ['E-mail'], summary: 'Open-tracking pixel (marks the message read)',
        params: Type.Object({ apiSpaceId: Type.String({ maxLength: 64 }), messageId: Type.String({ maxLength: 100 }) }),
        querystring: Type.Object({ s: Type.Optional(Type.String({ maxLength: 64 })) }),
        response: { 200: Type.Unknown({ description: 'image/gif' }), ...errorResponses() },
      },
      config: { auth: { kind: 'none' as const } },
    }, async (request, reply) => {
      const id = normaliseSpaceId(request.params.apiSpaceId);
      const given = Buffer.from(request.query.s ?? '');
      const expected = id ? Buffer.from(openSignature(key, id, request.params.messageId)) : Buffer.alloc(0);
      // Always answer with the image: mail clients show a broken picture otherwise.
      if (id && given.length === expected.length && timingSafeEqual(given, expected) && (await spaces.get(id))) {
        await messages()?.applyReceipt(id, 'email', { messageId: request.params.messageId, status: 'read', at: now(), details: { opened: true } }).catch((err) => request.log.warn({ err }, 'recording an e-mail open failed'));
      }
      return reply.type('image/gif').header('Cache-Control', 'no-store').send(GIF);
    });
  };
}
