/** Audit fields every resource view inside an API space carries (conventions.md §7.1). */
export interface AuditFields {
  _createdOn: string;
  _createdBy: string;
  _updatedOn: string;
  _updatedBy: string;
}

/** Audit fields of a soft-deleted resource; the `_deleted…` ones appear only when asked for (§7.2). */
export interface SoftDeleteAuditFields extends AuditFields {
  _deleted?: boolean;
  _deletedOn?: string;
  _deletedBy?: string;
}
