/**
 * Content store (spaces-and-billing.md §10): metadata rows plus bytes on local disk under
 * `DATA_DIR/content/<apiSpaceId>/<fileId>`.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Actor } from '../../auth/actor.js';
import type { Platform } from '../../platform.js';
import { iso } from '../../lib/clock.js';
import { AppError, errors } from '../../http/errors.js';
import { MAX_CONTENT_BYTES, type ContentApi, type UploadedFile } from './content.contract.js';
import { allowedTypes, essence } from './content.mime.js';

export const MAX_FILE_BYTES = MAX_CONTENT_BYTES;
const FOLDER = /^[A-Za-z0-9_-]{1,64}$/;

interface ContentRow {
  api_space_id: string;
  id: string;
  folder: string;
  name: string;
  type: string;
  size: number;
  /** Quoted strong ETag of the bytes. */
  etag: string;
  created_on: string;
  created_by: string;
}

declare module '../../storage/schema.js' {
  interface Database {
    content_files: ContentRow;
  }
}

export interface StoredFile {
  file: UploadedFile;
  etag: string;
  path: string;
}

export type ContentService = ReturnType<typeof createContentService>;

export function createContentService(p: Platform) {
  const root = join(p.config.dataDir, 'content');
  const pathOf = (apiSpaceId: string, id: string) => join(root, apiSpaceId, id);
  const allowed = allowedTypes(p.config.contentTypes);
  const view = (r: ContentRow): UploadedFile => ({
    id: r.id, url: `${p.config.publicBaseUrl}/apispaces/${r.api_space_id}/content/${r.id}`, name: r.name, type: r.type, folder: r.folder, size: Number(r.size),
    _createdOn: r.created_on, _createdBy: r.created_by, _updatedOn: r.created_on, _updatedBy: r.created_by,
  });

  const service = {
    async upload(actor: Pick<Actor, 'actor'>, apiSpaceId: string, input: { name: string; type: string; bytes: Buffer; folder?: string }): Promise<UploadedFile> {
      const failures = [];
      const type = essence(input.type);
      // eslint-disable-next-line no-control-regex
      if (!input.name || input.name.length > 255 || /[\u0000-\u001f\u007f]/.test(input.name)) failures.push({ paramName: 'name', message: 'Must be 1 to 255 characters without control characters' });
      if (!allowed(type)) failures.push({ paramName: 'type', message: `Type "${input.type}" is not allowed` });
      const folder = input.folder ?? 'content';
      if (!FOLDER.test(folder)) failures.push({ paramName: 'folder', message: 'Must be 1 to 64 characters A-Z, a-z, 0-9, _ or -' });
      if (input.bytes.length === 0) failures.push({ paramName: 'data', message: 'The file is empty' });
      if (failures.length) throw errors.validation(failures);
      if (input.bytes.length > MAX_FILE_BYTES) throw errors.payloadTooLarge('The file is larger than 20 MiB');

      const id = p.ids.uuid();
      const now = iso(p.clock.now());
      const row: ContentRow = {
        api_space_id: apiSpaceId, id, folder, name: input.name, type, size: input.bytes.length,
        etag: `"${createHash('sha256').update(input.bytes).digest('base64url').slice(0, 22)}"`, created_on: now, created_by: actor.actor,
      };
      const path = pathOf(apiSpaceId, id);
      await mkdir(join(root, apiSpaceId), { recursive: true });
      // Write then rename: a reader never sees a half-written file.
      await writeFile(`${path}.part`, input.bytes);
      await rename(`${path}.part`, path);
      try {
        await p.db.insertInto('content_files').values(row).execute();
      } catch (err) {
        await rm(path, { force: true });
        throw err;
      }
      return view(row);
    },

    async find(apiSpaceId: string, id: string): Promise<StoredFile | undefined> {
      const row = await p.db.selectFrom('content_files').selectAll().where('api_space_id', '=', apiSpaceId).where('id', '=', id).executeTakeFirst();
      return row ? { file: view(row), etag: row.etag, path: pathOf(apiSpaceId, id) } : undefined;
    },

    async describe(apiSpaceId: string, id: string) {
      return (await service.find(apiSpaceId, id))?.file;
    },

    async read(apiSpaceId: string, id: string) {
      const found = await service.find(apiSpaceId, id);
      if (!found) return undefined;
      try {
        return { file: found.file, bytes: await readFile(found.path) };
      } catch {
        return undefined;
      }
    },

    /**
     * Retention (spaces-and-billing.md §5): hard-deletes files older than the space's
     * `contentDays` (default 30; null keeps them). Returns how many were removed.
     */
    async purgeExpired(now: number, retentionDays: (apiSpaceId: string) => Promise<number | null>): Promise<number> {
      let removed = 0;
      const spaces = await p.db.selectFrom('content_files').select('api_space_id').distinct().execute();
      for (const { api_space_id: space } of spaces) {
        const days = await retentionDays(space);
        if (days === null) continue;
        const cutoff = iso(now - days * 86_400_000);
        const rows = await p.db.selectFrom('content_files').select('id').where('api_space_id', '=', space).where('created_on', '<', cutoff).limit(1000).execute();
        for (const { id } of rows) {
          await service.remove(space, id).catch(() => {});
          removed++;
        }
      }
      return removed;
    },

    async remove(apiSpaceId: string, id: string): Promise<void> {
      const res = await p.db.deleteFrom('content_files').where('api_space_id', '=', apiSpaceId).where('id', '=', id).executeTakeFirst();
      if (Number(res.numDeletedRows) !== 1) throw errors.notFound('File');
      await rm(pathOf(apiSpaceId, id), { force: true });
    },
  };
  return service satisfies ContentApi;
}

/** Decodes upload base64 (standard or URL-safe, optional `data:…;base64,` prefix, white space). */
export function decodeBase64(data: string): Buffer {
  const text = data.replace(/^data:[^,]*;base64,/i, '').replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(text) || text.length % 4 === 1) throw errors.invalidField('data', 'Not valid base64');
  // 20 MiB decoded ≈ 27 962 028 base64 characters: refuse before decoding.
  if (text.length > Math.ceil(MAX_FILE_BYTES / 3) * 4 + 4) throw new AppError(413, 'PayloadTooLarge', 'The file is larger than 20 MiB');
  return Buffer.from(text, 'base64');
}
