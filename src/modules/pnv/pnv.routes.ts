import { Type } from '@sinclair/typebox';
import type { App } from '../module.js';
import { errors } from '../../http/errors.js';
import { errorResponses, SpaceParams } from '../../http/schemas.js';
import { boundaryOf, parseMultipart } from './pnv.multipart.js';
import type { PnvService } from './pnv.service.js';
import { BulkBody, JobDetails, JobParams, SingleQuery, SingleValidation } from './pnv.schemas.js';

const tags = ['Phone number validation'];
const read = { auth: { kind: 'space' as const, permission: 'pnv:r' } };
const write = { auth: { kind: 'space' as const, permission: 'pnv:w' } };
const BULK_LIMIT = 50 * 1024 * 1024;

export function pnvRoutes(service: PnvService) {
  return async (app: App) => {
    // Uploads arrive as multipart/form-data; the parts are read in the handler.
    app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer', bodyLimit: BULK_LIMIT }, (req, body, done) => {
      const boundary = boundaryOf(req.headers['content-type']);
      if (!boundary) return done(errors.invalidField('body', 'multipart/form-data needs a boundary'));
      done(null, { parts: parseMultipart(body as Buffer, boundary) });
    });

    app.get('/apispaces/:apiSpaceId/phonevalidation/single', {
      schema: { operationId: 'pnv.single', tags, summary: 'Validate one phone number', params: SpaceParams, querystring: SingleQuery, response: { 200: SingleValidation, ...errorResponses(404) } },
      config: read,
    }, async (request) => service.single(request.query.phoneNumber, request.query.countryCode));

    app.post('/apispaces/:apiSpaceId/phonevalidation/bulk', {
      schema: { operationId: 'pnv.bulk.create', tags, summary: 'Start a bulk validation job', params: SpaceParams, body: BulkBody, response: { 200: Type.Integer({ description: 'The new job id' }), ...errorResponses(404, 413, 415) } },
      config: write,
      bodyLimit: BULK_LIMIT,
    }, async (request, reply) => {
      const parts = (request.body as { parts?: unknown } | undefined)?.parts;
      if (!Array.isArray(parts)) throw errors.unsupportedMediaType(String(request.headers['content-type'] ?? '').split(';')[0] || 'none');
      const jobId = await service.createJob(request.space.id, 0, parts);
      return reply.code(200).send(jobId);
    });

    app.get('/apispaces/:apiSpaceId/phonevalidation/bulk', {
      schema: { operationId: 'pnv.bulk.list', tags, summary: 'List bulk validation jobs', params: SpaceParams, response: { 200: Type.Array(JobDetails), ...errorResponses(404) } },
      config: read,
    }, async (request) => service.list(request.space.id));

    app.get('/apispaces/:apiSpaceId/phonevalidation/bulk/:jobId', {
      schema: { operationId: 'pnv.bulk.get', tags, summary: 'Bulk job details and progress', params: JobParams, response: { 200: JobDetails, ...errorResponses(404) } },
      config: read,
    }, async (request) => service.get(request.space.id, Number(request.params.jobId)));

    app.get('/apispaces/:apiSpaceId/phonevalidation/bulk/:jobId/result', {
      schema: { operationId: 'pnv.bulk.result', tags, summary: 'Bulk job result CSV', params: JobParams, response: { 200: Type.String({ description: 'text/csv' }), ...errorResponses(404) } },
      config: read,
    }, async (request, reply) => {
      const csv = await service.result(request.space.id, Number(request.params.jobId));
      return reply.type('text/csv; charset=utf-8').header('Content-Disposition', `attachment; filename="${request.params.jobId}-results.csv"`).send(csv);
    });
  };
}
