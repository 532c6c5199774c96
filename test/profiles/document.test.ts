import { it } from 'node:test';
import assert from 'node:assert/strict';
import { etagForJson } from '../../src/http/etag.js';
import { documentJson, etagOf, finishData, representation, representationJson, toDocument, type ProfileState } from '../../src/modules/profiles/profiles.document.js';

const base: ProfileState = {
  id: 'p1', data: {}, optIn: null, rels: null, system: false, revision: 3,
  createdOn: '2026-01-01T00:00:00.000Z', createdBy: 'a', updatedOn: '2026-01-02T00:00:00.000Z', updatedBy: 'b',
  lastActivityOn: null, deletedOn: null, deletedBy: null,
};

const states: ProfileState[] = [
  base,
  { ...base, data: { email: 'x@example.com', loyalty: { tier: 'gold', points: 1 }, tags: ['a', 1, null, true, [2]] } },
  // Array-index keys are ordered first by JavaScript: the fast path must not be taken.
  { ...base, data: { name: 'n', 7: 'seven', 0: 'zero' } },
  { ...base, id: 'zoë "quoted" \\ id', data: { 'ünï': 'cödé', nested: { '1': 1, a: 'b' } }, revision: 255 },
  { ...base, optIn: { email: true }, rels: { primary: 'p0', links: ['c1'] }, system: true, deletedOn: '2026-01-03T00:00:00.000Z', deletedBy: 'c', lastActivityOn: '2026-01-04T00:00:00.000Z' },
  { ...base, optIn: {}, rels: { links: [] }, data: { a: 1 } },
];

it('the representation JSON and ETag equal those of the representation object', () => {
  for (const s of states) {
    assert.equal(representationJson(s), JSON.stringify(representation(s)));
    assert.equal(etagOf(s), etagForJson(s.revision, JSON.stringify(representation(s))));
  }
});

it("the document's JSON (event payloads) equals that of the document object, before and after the ETag", () => {
  for (const s of states) {
    const fresh = { ...s };
    assert.equal(documentJson(fresh), JSON.stringify(toDocument(fresh)));
    etagOf(fresh);
    assert.equal(documentJson(fresh), JSON.stringify(toDocument(fresh)));
  }
});

it('the size check counts the document as { id, ...data } serialised', () => {
  for (const [id, size] of [['p', 64 * 1024], ['zoë', 64 * 1024 + 1]] as const) {
    const idJson = JSON.stringify(id);
    // A string property that makes `{ id, ...data }` exactly `size` bytes.
    const fill = size - Buffer.byteLength(JSON.stringify({ id, a: 1, s: '' }));
    const data = { a: 1, s: 'x'.repeat(fill) };
    assert.equal(Buffer.byteLength(JSON.stringify({ id, ...data })), size);
    const failures: Array<{ paramName: string; message: string }> = [];
    finishData(id, data, failures);
    assert.equal(failures.length, size > 64 * 1024 ? 1 : 0, `${idJson} ${size}`);
  }
  const failures: Array<{ paramName: string; message: string }> = [];
  finishData('p', {}, failures);
  assert.equal(failures.length, 0);
});
