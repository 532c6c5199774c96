import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { App } from '../module.js';
import type { SpaceDirectory } from '../../auth/space-directory.js';
import { errorResponses, SpaceIdParam, SpaceParams } from '../../http/schemas.js';
import { AppError, errors } from '../../http/errors.js';
import { parseJsonBody } from '../../http/transport.js';
import { normaliseSpaceId } from '../../lib/ids.js';
import { decodeBase64, type ContentService } from './content.service.js';
import { ACTIVE_TYPES, essence, typeFromName } from './content.mime.js';

const tags = ['Content'];
const REQUEST_LIMIT = 30 * 1024 * 1024;

const UploadBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 255 }),
  type: Type.String({ minLength: 1, maxLength: 255, description: 'MIME type (allow-list of spaces-and-billing.md §10.4)' }),
  data: Type.String({ description: 'Base64 file data (JSON form); multipart and raw uploads fill it internally' }),
  folder: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' })),
}, { additionalProperties: true, description: 'JSON form; multipart/form-data (part "file") and raw bytes with Content-Filename are accepted too' });

const UploadedFile = Type.Object({
  id: Type.String(), url: Type.String(), name: Type.String(), type: Type.String(), folder: Type.String(), size: Type.Integer(),
  _createdOn: Type.String({ format: 'date-time' }), _createdBy: Type.String(), _updatedOn: Type.String({ format: 'date-time' }), _updatedBy: Type.String(),
});
const FolderQuery = Type.Object({ folder: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' })) }, { additionalProperties: true });
const FileParams = Type.Object({ apiSpaceId: SpaceIdParam, fileId: Type.String({ minLength: 1, maxLength: 100 }) });

type UploadFields = { name?: string; type?: string; data: string; folder?: string };
/** Bytes of multipart and raw uploads, kept beside the parsed body instead of re-encoding them. */
const uploads = new WeakMap<object, Buffer>();

/** Browsers send `application/octet-stream` for unknown files: derive the type from the name. */
const effectiveType = (type: string | undefined, name: string | undefined): string | undefined =>
  !type || essence(type) === 'application/octet-stream' ? (name && typeFromName(name)) || type : type;

async function parseMultipart(contentType: string, body: Buffer): Promise<UploadFields> {
  let form: FormData;
  try {
    form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
  } catch {
    throw errors.invalidField('body', 'Malformed multipart/form-data body');
  }
  const entry = form.get('file') ?? [...form.values()].find((v) => typeof v !== 'string');
  if (!entry || typeof entry === 'string') throw errors.invalidField('file', 'A file part named "file" is required');
  const folder = form.get('folder');
  const out: UploadFields = { name: entry.name, type: effectiveType(entry.type, entry.name), data: '', ...(typeof folder === 'string' ? { folder } : {}) };
  uploads.set(out, Buffer.from(await entry.arrayBuffer()));
  return out;
}

function parseRaw(req: FastifyRequest, body: Buffer): UploadFields {
  const header = req.headers['content-filename'];
  const raw = Array.isArray(header) ? header[0] : header;
  if (!raw) throw errors.invalidField('header.content-filename', 'Raw uploads need the file name in Content-Filename');
  let name = raw;
  try {
    name = decodeURIComponent(raw);
  } catch {}
  const out: UploadFields = { name, type: effectiveType(req.headers['content-type'], name), data: '' };
  uploads.set(out, body);
  return out;
}

/** `If-None-Match` (weak comparison, RFC 9110 §13.1.2). */
const noneMatch = (header: string | undefined, etag: string): boolean =>
  !!header && (header.trim() === '*' || (header.match(/(W\/)?"[^"]*"/g) ?? []).some((t) => t.replace(/^W\//, '') === etag));

function disposition(name: string, type: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `${ACTIVE_TYPES.has(type) ? 'attachment' : 'inline'}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

export function contentRoutes(content: ContentService, spaces: SpaceDirectory) {
  return async (app: App) => {
    await app.register(async (scope: App) => {
      scope.removeAllContentTypeParsers();
      const json = (req: FastifyRequest, body: Buffer, done: (err: Error | null, body?: unknown) => void) => {
        try {
          // A raw upload names its file in `content-filename` (§10.1 form 3), a JSON file included.
          done(null, req.headers['content-filename'] !== undefined ? parseRaw(req, body) : parseJsonBody(body));
        } catch (err) {
          done(err as Error);
        }
      };
      scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, json);
      scope.addContentTypeParser(/^application\/[a-z0-9.+-]*\+json$/i, { parseAs: 'buffer' }, json);
      scope.addContentTypeParser('multipart/form-data', { parseAs: 'buffer' }, async (req: FastifyRequest, body: Buffer) => parseMultipart(String(req.headers['content-type']), body));
      scope.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
        // No Content-Type at all is JSON (conventions.md §2.1); any other type is the file's own.
        if (!req.headers['content-type']) return json(req, body as Buffer, done);
        try {
          done(null, parseRaw(req, body as Buffer));
        } catch (err) {
          done(err as Error);
        }
      });

      scope.post('/apispaces/:apiSpaceId/content', {
        schema: { operationId: 'content.upload', tags, summary: 'Upload a file', params: SpaceParams, querystring: FolderQuery, body: UploadBody, response: { 200: UploadedFile, ...errorResponses(404, 413, 415) } },
        config: { auth: { kind: 'space', permission: 'content:w', session: true, agent: true } },
        bodyLimit: REQUEST_LIMIT,
      }, async (request, reply) => {
        const body = request.body as UploadFields;
        const bytes = uploads.get(body) ?? decodeBase64(body.data);
        const file = await content.upload(request.actor, request.space.id, {
          name: body.name ?? '', type: effectiveType(body.type, body.name) ?? '', bytes, folder: request.query.folder ?? body.folder,
        });
        // Exactly 200: the SDK rejects 201 (app-messaging.md §6).
        return reply.code(200).send(file);
      });
    });

    app.get('/apispaces/:apiSpaceId/content/:fileId', {
      schema: {
        operationId: 'content.get', tags, summary: 'Download a file (no credential)', params: FileParams,
        response: { 200: Type.Unknown({ description: 'The bytes' }), 206: Type.Unknown({ description: 'A byte range' }), 304: Type.Null(), ...errorResponses(404, 416) },
      },
      config: { auth: { kind: 'none' } },
    }, async (request, reply) => {
      const id = normaliseSpaceId(request.params.apiSpaceId);
      const space = id ? await spaces.get(id) : undefined;
      const found = space ? await content.find(space.id, request.params.fileId) : undefined;
      const size = found ? await stat(found.path).then((s) => s.size, () => undefined) : undefined;
      if (!found || size === undefined) throw errors.notFound('File');
      const { file, etag } = found;
      reply.header('ETag', etag).header('Cache-Control', 'public, max-age=86400, immutable').header('X-Content-Type-Options', 'nosniff')
        .header('Content-Disposition', disposition(file.name, file.type)).header('Accept-Ranges', 'bytes');
      if (ACTIVE_TYPES.has(file.type)) reply.header('Content-Security-Policy', 'sandbox');
      // The one route where conditional GET applies (spaces-and-billing.md §10.2).
      if (noneMatch(request.headers['if-none-match'], etag)) return reply.code(304).send(undefined as never);
      reply.type(file.type);
      const range = /^bytes=(\d*)-(\d*)$/.exec(String(request.headers.range ?? '').trim());
      if (range && (range[1] || range[2])) {
        let start = range[1] ? Number(range[1]) : Math.max(0, size - Number(range[2]));
        let end = range[1] && range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
        if (!range[1]) end = size - 1;
        if (start >= size || start > end) {
          throw new AppError(416, 'RangeNotSatisfiable', 'The range is outside the file', undefined, { 'Content-Range': `bytes */${size}` });
        }
        start = Math.max(0, start);
        end = Math.max(start, end);
        reply.code(206).header('Content-Range', `bytes ${start}-${end}/${size}`).header('Content-Length', String(end - start + 1));
        return reply.send(createReadStream(found.path, { start, end }));
      }
      reply.header('Content-Length', String(size));
      return reply.send(createReadStream(found.path));
    });

    app.delete('/apispaces/:apiSpaceId/content/:fileId', {
      schema: { operationId: 'content.delete', tags, summary: 'Delete a file', params: FileParams, response: { 200: Type.Null({ description: 'Deleted; empty body' }), ...errorResponses(404) } },
      config: { auth: { kind: 'space', permission: 'content:d' } },
    }, async (request, reply) => {
      await content.remove(request.space.id, request.params.fileId);
      return reply.code(200).send(undefined as never);
    });
  };
}
