import type { App } from '../module.js';
import { NoContent, errorResponses } from '../../http/schemas.js';
import type { PushService } from './push.service.js';
import {
  ApnsCertificateBody, ApnsEntry, ApnsParams, ApnsTokenBody, ApnsTokenSummary, FcmBody, FcmEntry, FcmParams, PemFile, PushParams, PushSummary,
} from './push.schemas.js';

const tags = ['API spaces'];
const admin = { auth: { kind: 'account' as const, admin: true } };
const PEM = 'application/x-pem-file';

/** Push configuration (spaces-and-billing.md §4); admin account tokens only. */
export function pushRoutes(push: PushService) {
  return async (app: App) => {
    app.get('/apispaces/:apiSpaceId/push', {
      schema: { operationId: 'apispaces.push.get', tags, summary: 'Get the push configuration (no secrets)', params: PushParams, response: { 200: PushSummary, ...errorResponses(404) } },
      config: admin,
    }, async (request) => push.summary(request.space.id));

    app.put('/apispaces/:apiSpaceId/push/apns', {
      schema: { operationId: 'apispaces.push.apns.put', tags, summary: 'Set certificate-based APNs credentials for a bundle and environment', params: PushParams, body: ApnsCertificateBody, response: { 200: ApnsEntry, ...errorResponses(404) } },
      config: admin,
    }, async (request) => push.putApnsCertificate(request.actor, request.space.id, request.body));

    app.delete('/apispaces/:apiSpaceId/push/apns/:bundleId/:environment', {
      schema: { operationId: 'apispaces.push.apns.delete', tags, summary: 'Remove an APNs certificate', params: ApnsParams, response: { 204: NoContent, ...errorResponses(404) } },
      config: admin,
    }, async (request, reply) => {
      await push.removeApnsCertificate(request.actor, request.space.id, request.params.bundleId, request.params.environment);
      return reply.code(204).send(null);
    });

    app.get('/apispaces/:apiSpaceId/push/apns/:bundleId/:environment/cert', {
      schema: { operationId: 'apispaces.push.apns.cert', tags, summary: 'Download the public APNs certificate (PEM)', params: ApnsParams, response: { 200: PemFile, ...errorResponses(404) } },
      config: admin,
    }, async (request, reply) => {
      const { bundleId, environment } = request.params;
      const pem = await push.apnsCertificatePem(request.space.id, bundleId, environment);
      return reply.type(PEM).header('Content-Disposition', `attachment; filename="${bundleId}-${environment}.pem"`).send(pem);
    });

    app.put('/apispaces/:apiSpaceId/push/apnstoken', {
      schema: { operationId: 'apispaces.push.apnstoken.put', tags, summary: 'Set token-based APNs credentials (.p8 key)', params: PushParams, body: ApnsTokenBody, response: { 200: ApnsTokenSummary, ...errorResponses(404) } },
      config: admin,
    }, async (request) => push.putApnsToken(request.actor, request.space.id, request.body));

    app.delete('/apispaces/:apiSpaceId/push/apnstoken', {
      schema: { operationId: 'apispaces.push.apnstoken.delete', tags, summary: 'Remove the token-based APNs credentials', params: PushParams, response: { 204: NoContent, ...errorResponses(404) } },
      config: admin,
    }, async (request, reply) => {
      await push.removeApnsToken(request.actor, request.space.id);
      return reply.code(204).send(null);
    });

    app.get('/apispaces/:apiSpaceId/push/apnstoken/key', {
      schema: { operationId: 'apispaces.push.apnstoken.key', tags, summary: 'Download the APNs .p8 signing key (audited)', params: PushParams, response: { 200: PemFile, ...errorResponses(404) } },
      config: admin,
    }, async (request, reply) => {
      const { keyId, pem } = await push.apnsTokenKey(request.actor, request.space.id);
      return reply.type(PEM).header('Content-Disposition', `attachment; filename="AuthKey_${keyId}.p8"`).send(pem);
    });

    app.put('/apispaces/:apiSpaceId/push/fcm/:package', {
      schema: { operationId: 'apispaces.push.fcm.put', tags, summary: 'Set FCM HTTP v1 credentials for an Android package', params: FcmParams, body: FcmBody, response: { 200: FcmEntry, ...errorResponses(404) } },
      config: admin,
    }, async (request) => push.putFcm(request.actor, request.space.id, request.params.package, request.body));

    app.delete('/apispaces/:apiSpaceId/push/fcm/:package', {
      schema: { operationId: 'apispaces.push.fcm.delete', tags, summary: 'Remove the FCM credentials of an Android package', params: FcmParams, response: { 204: NoContent, ...errorResponses(404) } },
      config: admin,
    }, async (request, reply) => {
      await push.removeFcm(request.actor, request.space.id, request.params.package);
      return reply.code(204).send(null);
    });
  };
}
