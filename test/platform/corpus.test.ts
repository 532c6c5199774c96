import { it, before } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { casesFor } from '../fixtures/corpus.js';
import type { Operation } from '../../src/http/operations.js';

const ANSWER_WITHIN_MS = 5000;

/** Destructive operations on the space itself run last so the rest keep a live space. */
const order = (op: Operation) => (op.method !== 'DELETE' ? 0 : op.url === '/apispaces/:apiSpaceId' ? 2 : 1);

/** Verify keeps its own error body (verify.md §5): a JSON array of {code, description}. */
const ownErrorBody = (op: Operation) => /^\/webapi\/verify/i.test(op.url);

eachDatabase('bad-input corpus over every registered operation', (dialect) => {
  const s = useServer(dialect, { start: false });
  let space: string;
  before(async () => {
    space = await s().createSpace('corpus');
  });

  it('answers every hostile request below 500, with the conventions.md §4 error body', async () => {
    const ops = [...s().app.operations.operations].sort((a, b) => order(a) - order(b));
    assert.ok(ops.length > 0, 'operations are registered');
    const failures: string[] = [];
    let sent = 0;
    corpus: for (const op of ops) {
      for (const c of casesFor(op, space)) {
        sent++;
        const where = `${op.id} (${op.method} ${op.url}) «${c.name}»`;
        let timer: NodeJS.Timeout | undefined;
        const res = await Promise.race([
          s().request(c.request),
          new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ANSWER_WITHIN_MS))),
        ]);
        clearTimeout(timer);
        if (!res) {
          // A hung request may have wedged the database connection: report it and stop here.
          failures.push(`${where}: no answer within ${ANSWER_WITHIN_MS} ms`);
          break corpus;
        }
        if (res.statusCode >= 500) {
          failures.push(`${where}: ${res.statusCode} ${res.body.slice(0, 200)}`);
          continue;
        }
        if (res.statusCode < 400) continue;
        let body: any;
        try {
          body = res.json();
        } catch {
          failures.push(`${where}: ${res.statusCode} with a non-JSON body ${res.body.slice(0, 100)}`);
          continue;
        }
        if (ownErrorBody(op) && Array.isArray(body)) continue;
        const ok = typeof body?.message === 'string' && typeof body.code === 'string' && body.status === res.statusCode && typeof body.requestId === 'string'
          && (body.code !== 'ValidationFailed' || (Array.isArray(body.validationFailures) && body.validationFailures.length > 0));
        if (!ok) failures.push(`${where}: ${res.statusCode} with body ${res.body.slice(0, 200)}`);
      }
    }
    if (!failures.length) assert.ok(sent >= ops.length * 8, `sent ${sent} requests for ${ops.length} operations`);
    assert.deepEqual(failures.slice(0, 40), [], `${failures.length} bad answers`);
  });
});
