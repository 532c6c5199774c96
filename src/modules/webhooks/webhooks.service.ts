import type { SoftDeleteAuditFields } from '../../lib/audit.js';
import type { Platform } from '../../platform.js';
import type { Actor } from '../../auth/actor.js';
import { errors, type ValidationFailure } from '../../http/errors.js';
import { canonicalJson, etagFor } from '../../http/etag.js';
import { fromJson, toJson } from '../../storage/dialect.js';
import { iso } from '../../lib/clock.js';
import type { WebhookRow } from './webhooks.migrations.js';
import { normaliseSubscriptions, type Subscription } from './subscriptions.js';
import { webhookUrlProblem } from './sender.js';
import { createDeliveriesRepo, deliveryView } from './deliveries.repo.js';

export interface WebhookInput {
  name: string;
  url: string;
  secret?: string | null;
  subscriptions?: Array<{ type: string; filters?: Array<{ name: string; value: unknown }> }>;
  batch?: boolean;
  maxBatchSize?: number;
  batchTimeout?: number;
}

export interface WebhookView extends SoftDeleteAuditFields {
  id: string;
  name: string;
  url: string;
  secret?: string;
  subscriptions: Subscription[];
  batch: boolean;
  maxBatchSize: number;
  batchTimeout: number;
}

/** How long a replaced secret keeps signing alongside the new one (webhooks.md §4.2 rotation). */
const ROTATION_OVERLAP_MS = 24 * 3600_000;

export type WebhooksService = ReturnType<typeof createWebhooksService>;

/** Webhook configurations (webhooks.md §1–§2). `onDeleted` stops deliveries in this process. */
export function createWebhooksService(p: Platform, hooks: { onDeleted(webhookId: string): void; onQueued(webhookId: string): void }) {
  const { db, clock, ids, secrets, config } = p;
  const deliveries = createDeliveriesRepo(p);

  const view = (r: WebhookRow): WebhookView => ({
    id: r.id,
    name: r.name,
    url: r.url,
    ...(r.secret ? { secret: secrets.open(r.secret) } : {}),
    subscriptions: fromJson<Subscription[]>(r.subscriptions),
    batch: r.batch === 1,
    maxBatchSize: r.max_batch_size,
    batchTimeout: Number(r.batch_timeout_ms) / 1000,
    _createdOn: r.created_on,
    _createdBy: r.created_by,
    _updatedOn: r.updated_on,
    _updatedBy: r.updated_by,
    ...(r.deleted_on ? { _deleted: true, _deletedOn: r.deleted_on, _deletedBy: r.deleted_by ?? 'system' } : {}),
  });
  const withEtag = (r: WebhookRow) => {
    const v = view(r);
    const { _deleted, _deletedOn, _deletedBy, ...representation } = v;
    void _deleted; void _deletedOn; void _deletedBy;
    return { webhook: v, etag: etagFor(r.revision, representation) };
  };

  function validate(input: WebhookInput) {
    const failures: ValidationFailure[] = [];
    const urlProblem = webhookUrlProblem(input.url, { allowHttp: config.allowHttpWebhooks, allowPrivate: config.allowPrivateWebhookTargets });
    if (urlProblem) failures.push({ paramName: 'url', message: urlProblem });
    if (input.name.trim() === '') failures.push({ paramName: 'name', message: 'Must not be blank' });
    const subscriptions = normaliseSubscriptions(input.subscriptions ?? [], failures);
    if (failures.length) throw errors.validation(failures);
    return {
      name: input.name,
      url: input.url,
      secret: input.secret ? input.secret : null,
      subscriptions,
      batch: input.batch ? 1 : 0,
      max_batch_size: input.maxBatchSize ?? 100,
      batch_timeout_ms: Math.round((input.batchTimeout ?? 60) * 1000),
    };
  }

  async function row(apiSpaceId: string, id: string, includeDeleted = false): Promise<WebhookRow> {
    let q = db.selectFrom('webhooks').selectAll().where('api_space_id', '=', apiSpaceId).where('id', '=', id.toLowerCase());
    if (!includeDeleted) q = q.where('deleted_on', 'is', null);
    const r = await q.executeTakeFirst();
    if (!r) throw errors.notFound('Webhook');
    return r;
  }

  return {
    deliveries,

    async list(apiSpaceId: string, includeDeleted: boolean) {
      let q = db.selectFrom('webhooks').selectAll().where('api_space_id', '=', apiSpaceId).orderBy('created_on').orderBy('id').limit(5000);
      if (!includeDeleted) q = q.where('deleted_on', 'is', null);
      const rows = await q.execute();
      const newest = rows.reduce<WebhookRow | undefined>((a, r) => (!a || r.updated_on > a.updated_on ? r : a), undefined);
      return { items: rows.map(view), newest: newest ? { etag: withEtag(newest).etag, lastModified: newest.updated_on } : undefined };
    },

    async create(actor: Actor, apiSpaceId: string, input: WebhookInput) {
      const v = validate(input);
      const now = iso(clock.now());
      const r: WebhookRow = {
        id: ids.uuid(), api_space_id: apiSpaceId, account_id: actor.accountId, ...v,
        secret: v.secret ? secrets.seal(v.secret) : null, previous_secret: null, previous_secret_until: null,
        subscriptions: toJson(v.subscriptions), previous_subscriptions: null, subscriptions_changed_on: null, revision: 1,
        created_on: now, created_by: actor.actor, updated_on: now, updated_by: actor.actor, deleted_on: null, deleted_by: null,
      };
      await db.insertInto('webhooks').values(r).execute();
      return withEtag(r);
    },

    async get(apiSpaceId: string, id: string, includeDeleted: boolean) {
      return withEtag(await row(apiSpaceId, id, includeDeleted));
    },

    async update(actor: Actor, apiSpaceId: string, id: string, input: WebhookInput, check: (etag: string) => void) {
      const current = await row(apiSpaceId, id);
      check(withEtag(current).etag);
      const v = validate(input);
      const now = clock.now();
      const oldSecret = current.secret ? secrets.open(current.secret) : null;
      const rotated = oldSecret !== null && oldSecret !== v.secret;
      const oldSubscriptions = fromJson<Subscription[]>(current.subscriptions);
      // Canonical JSON: on PostgreSQL the stored copy comes back from jsonb with its keys reordered.
      const resubscribed = canonicalJson(oldSubscriptions) !== canonicalJson(v.subscriptions);
      const next: WebhookRow = {
        ...current, ...v,
        secret: v.secret ? secrets.seal(v.secret) : null,
        previous_secret: rotated ? current.secret : current.previous_secret,
        previous_secret_until: rotated ? now + ROTATION_OVERLAP_MS : current.previous_secret_until,
        subscriptions: toJson(v.subscriptions), revision: current.revision + 1, updated_on: iso(now), updated_by: actor.actor,
        previous_subscriptions: resubscribed ? toJson(oldSubscriptions) : current.previous_subscriptions === null ? null : toJson(fromJson(current.previous_subscriptions)),
        subscriptions_changed_on: resubscribed ? iso(now) : current.subscriptions_changed_on,
      };
      const { id: _id, api_space_id: _s, ...changes } = next;
      void _id; void _s;
      const res = await db.updateTable('webhooks').set(changes).where('id', '=', current.id).where('revision', '=', current.revision).where('deleted_on', 'is', null).executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) throw errors.conflict('The webhook was changed by another request');
      return withEtag(next);
    },

    async remove(actor: Actor, apiSpaceId: string, id: string, check: (etag: string) => void): Promise<void> {
      const current = await row(apiSpaceId, id);
      check(withEtag(current).etag);
      const now = clock.now();
      await p.transaction(async (uow) => {
        const res = await uow.tx.updateTable('webhooks').set({ deleted_on: iso(now), deleted_by: actor.actor })
          .where('id', '=', current.id).where('revision', '=', current.revision).where('deleted_on', 'is', null).executeTakeFirst();
        if (Number(res.numUpdatedRows) !== 1) throw errors.conflict('The webhook was changed by another request');
        // Events already queued for it are dropped (webhooks.md §2).
        await deliveries.cancelAll(uow.tx, current.id, now);
        uow.afterCommit(() => hooks.onDeleted(current.id));
      });
    },

    async listDeliveries(apiSpaceId: string, id: string, opts: { limit: number; state?: string }) {
      const w = await row(apiSpaceId, id, true);
      return deliveries.recent(w.id, opts);
    },

    async retryDelivery(apiSpaceId: string, id: string, deliveryId: string) {
      const w = await row(apiSpaceId, id);
      const d = await deliveries.get(w.id, deliveryId);
      if (!d) throw errors.notFound('Delivery');
      if (d.state === 'pending' || d.state === 'in_flight') throw errors.conflict('The delivery is still queued', 'InvalidState');
      await deliveries.requeue(w.id, d.id, d.attempts, clock.now());
      hooks.onQueued(w.id);
      const again = await deliveries.get(w.id, deliveryId);
      return deliveryView(again!, await deliveries.attemptsOf([again!.id]));
    },
  };
}
