/**
 * Stored files other modules use (`services.content`), implemented by the content module
 * (spaces-and-billing.md §10): chat and App Messaging attachments, message parts by URL.
 */
import type { Actor } from '../../auth/actor.js';

/** `UploadedFile` (vendor OpenAPI `content-api.json`). */
export interface UploadedFile {
  id: string;
  url: string;
  name: string;
  type: string;
  folder: string;
  size: number;
  _createdOn: string;
  _createdBy: string;
  _updatedOn: string;
  _updatedBy: string;
}

/** The largest file the Content API stores. */
export const MAX_CONTENT_BYTES = 20 * 1024 * 1024;

export interface ContentApi {
  /** Stores a file (type checked against the allow-list; 400/413 like `POST /content`). */
  upload(actor: Pick<Actor, 'actor'>, apiSpaceId: string, file: { name: string; type: string; bytes: Buffer; folder?: string }): Promise<UploadedFile>;
  /** A stored file's record (without reading its bytes), or undefined. */
  describe(apiSpaceId: string, fileId: string): Promise<UploadedFile | undefined>;
  /** A stored file's record and bytes, or undefined. */
  read(apiSpaceId: string, fileId: string): Promise<{ file: UploadedFile; bytes: Buffer } | undefined>;
}
