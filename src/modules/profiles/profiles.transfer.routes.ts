import { Type } from '@sinclair/typebox';
import type { App } from '../module.js';
import { errorResponses, SpaceParams } from '../../http/schemas.js';
import { errors } from '../../http/errors.js';
import { iso } from '../../lib/clock.js';
import { parseFilterString } from './profiles.query.js';
import { exportOptions, type Exporter } from './profiles.export.js';
import type { ImportUpload, Imports } from './profiles.import.js';
import { ExportQuery, ImportDuplicates, ImportJob, ImportParams, ImportQuery, queryBool } from './profiles.schemas.js';

const tags = ['Profiles'];
const write = { auth: { kind: 'space' as const, permission: 'prof:wa', agent: true } };
export const IMPORT_BODY_LIMIT = 50 * 1024 * 1024;

interface Multipart {
  fields: Record<string, string>;
  file?: { content: Buffer; filename?: string; type?: string };
}

/** A minimal multipart/form-data reader (one file part plus text fields). */
export function parseMultipart(body: Buffer, contentType: string): Multipart {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!m) throw errors.invalidField('body', 'multipart/form-data without a boundary');
  const boundary = Buffer.from(`--${m[1] ?? m[2]}`);
  const out: Multipart = { fields: {} };
  let pos = body.indexOf(boundary);
  while (pos !== -1) {
    let start = pos + boundary.length;
    if (body[start] === 0x2d && body[start + 1] === 0x2d) break;
    if (body[start] === 0x0d && body[start + 1] === 0x0a) start += 2;
    const next = body.indexOf(boundary, start);
    if (next === -1) break;
    let part = body.subarray(start, next);
    if (part.length >= 2 && part[part.length - 2] === 0x0d && part[part.length - 1] === 0x0a) part = part.subarray(0, part.length - 2);
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd !== -1) {
      const headers = part.subarray(0, headerEnd).toString('utf8');
      const content = part.subarray(headerEnd + 4);
      const name = /name="([^"]*)"/i.exec(headers)?.[1];
      const filename = /filename="([^"]*)"/i.exec(headers)?.[1];
      const type = /content-type:\s*([^\r\n;]+)/i.exec(headers)?.[1]?.trim().toLowerCase();
      if (name === 'file') out.file = { content, filename, type };
      else if (name) out.fields[name] = content.toString('utf8');
    }
    pos = next;
  }
  return out;
}

const SEPARATORS: Record<string, string> = { ',': ',', ';': ';', tab: '\t', '\t': '\t' };

export function transferRoutes(exporter: Exporter, imports: Imports) {
  return async (app: App) => {
    app.post('/apispaces/:apiSpaceId/profiles/export', {
      schema: { operationId: 'profiles.export', tags, summary: 'Export profiles as JSON or CSV', params: SpaceParams, querystring: ExportQuery, body: Type.Unknown({ description: 'ProfileExportOptions (optional)' }),
        response: { 200: Type.Unknown({ description: 'The exported file (streamed JSON or CSV)' }), ...errorResponses(404) } },
      config: { auth: { kind: 'space' as const, permission: 'prof:ra', agent: true } },
    }, async (request, reply) => {
      const opts = exportOptions(request.body);
      const filters = parseFilterString((request.query as { query?: string }).query ?? '', 'query.query');
      const stream = await exporter.stream(request.space.id, filters, opts);
      const stamp = iso(Date.now()).replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
      return reply
        .header('Content-Type', opts.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8')
        .header('Content-Disposition', `attachment; filename="profiles-${stamp}.${opts.format}"`)
        .send(stream);
    });

    // Uploads take CSV and multipart bodies: their parsers live in this scope only.
    await app.register(async (scope: App) => {
      scope.addContentTypeParser(['text/csv', 'application/csv', 'text/plain', 'multipart/form-data'], { parseAs: 'buffer', bodyLimit: IMPORT_BODY_LIMIT }, (_req, body, done) => done(null, body));
      scope.post('/apispaces/:apiSpaceId/profiles/import', {
        schema: { operationId: 'profiles.import.upload', tags, summary: 'Upload and stage a profile import', params: SpaceParams, querystring: ImportQuery, body: Type.Unknown({ description: 'CSV, JSON array or multipart/form-data with a file part' }),
          response: { 201: ImportJob, 202: ImportJob, ...errorResponses(404, 409, 413, 415) } },
        config: write,
        bodyLimit: IMPORT_BODY_LIMIT,
      }, async (request, reply) => {
        const type = String(request.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase();
        const q = { ...(request.query as Record<string, string | undefined>) };
        let upload: Pick<ImportUpload, 'kind' | 'content' | 'filename'>;
        if (type === 'multipart/form-data') {
          const mp = parseMultipart(request.body as Buffer, String(request.headers['content-type']));
          if (!mp.file) throw errors.invalidField('file', 'A file part is required');
          Object.assign(q, mp.fields);
          const isJson = mp.file.type?.includes('json') || (!mp.file.type?.includes('csv') && /\.json$/i.test(mp.file.filename ?? ''));
          upload = { kind: isJson ? 'json' : 'csv', content: mp.file.content, filename: mp.file.filename };
        } else if (Buffer.isBuffer(request.body)) {
          upload = { kind: 'csv', content: request.body, filename: q.filename };
        } else {
          if (!Array.isArray(request.body)) throw errors.invalidField('body', 'Must be an array of profiles');
          upload = { kind: 'json', content: request.body, filename: q.filename };
        }
        const separator = SEPARATORS[q.separator ?? ','];
        if (!separator) throw errors.invalidField('query.separator', 'Must be ",", ";" or "tab"');
        const mode = q.mode ?? 'merge';
        if (mode !== 'merge' && mode !== 'replace') throw errors.invalidField('query.mode', 'Must be "merge" or "replace"');
        const job = await imports.upload(request.actor, request.space.id, { ...upload, separator, mode, start: queryBool(q.start, 'start') });
        return reply.code(201).header('Location', `/apispaces/${request.space.id}/profiles/import/${job.id}`).send(job);
      });
    });

    app.get('/apispaces/:apiSpaceId/profiles/import/:importId', {
      schema: { operationId: 'profiles.import.get', tags, summary: 'Import job status', params: ImportParams, response: { 200: ImportJob, ...errorResponses(404) } },
      config: write,
    }, async (request) => imports.get(request.space.id, request.params.importId));

    app.get('/apispaces/:apiSpaceId/profiles/import/:importId/duplicates', {
      schema: { operationId: 'profiles.import.duplicates', tags, summary: 'Ids duplicated in an import or already present', params: ImportParams, response: { 200: ImportDuplicates, ...errorResponses(404) } },
      config: write,
    }, async (request) => imports.duplicates(request.space.id, request.params.importId));

    app.put('/apispaces/:apiSpaceId/profiles/import/:importId/start', {
      schema: { operationId: 'profiles.import.start', tags, summary: 'Start applying a staged import', params: ImportParams, response: { 202: ImportJob, ...errorResponses(404, 409) } },
      config: write,
    }, async (request, reply) => reply.code(202).send(await imports.start(request.actor, request.space.id, request.params.importId)));
  };
}
