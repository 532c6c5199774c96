/**
 * Stored message templates other modules use (`services.templates`), implemented by the templates
 * module (one-api.md §3.10). The messages module resolves `templateId` through `get`.
 */
import type { SoftDeleteAuditFields } from '../../lib/audit.js';

export interface TemplatePart {
  type: string;
  name?: string;
  url?: string;
  data?: string | Record<string, unknown>;
  size?: number;
  channels?: string[];
  [extra: string]: unknown;
}

/** `templateFull` (vendor OpenAPI `templates-api.json`). */
export interface TemplateView extends SoftDeleteAuditFields {
  id: string;
  name: string;
  description?: string;
  messageParts: TemplatePart[];
  [extra: string]: unknown;
}

export interface TemplatesApi {
  /** The live (not deleted) template, or undefined. */
  get(apiSpaceId: string, id: string): Promise<TemplateView | undefined>;
}
