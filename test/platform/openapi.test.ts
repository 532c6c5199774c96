import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { generateOpenApi, OPENAPI_FILE } from '../../scripts/write-openapi.js';

const toOpenApiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

it('docs/openapi.json matches the generated document', async () => {
  const generated = await generateOpenApi();
  let committed = '';
  try {
    committed = readFileSync(OPENAPI_FILE, 'utf8');
  } catch {}
  if (committed !== generated) {
    const a = JSON.parse(generated) as { paths: Record<string, unknown> };
    const b = committed ? (JSON.parse(committed) as { paths: Record<string, unknown> }) : { paths: {} };
    const added = Object.keys(a.paths).filter((p) => !(p in b.paths));
    const removed = Object.keys(b.paths).filter((p) => !(p in a.paths));
    assert.fail(`docs/openapi.json is out of date: run \`npm run openapi\` and commit it (new paths: ${added.slice(0, 10).join(', ') || 'none'}; gone: ${removed.slice(0, 10).join(', ') || 'none'}; otherwise changed schemas)`);
  }
});

eachDatabase('OpenAPI document and reference page', (dialect) => {
  const s = useServer(dialect, { start: false });

  it('serves OpenAPI 3.1 at /openapi.json with every registered operation', async () => {
    const res = await s().request({ method: 'GET', url: '/openapi.json', token: null });
    assert.equal(res.statusCode, 200);
    const doc = res.json();
    assert.equal(doc.openapi, '3.1.0');
    const seen = new Map<string, { responses?: Record<string, unknown> }>();
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, { operationId?: string; responses?: Record<string, unknown> }>>)) {
      for (const [method, op] of Object.entries(item)) if (op.operationId) seen.set(`${method.toUpperCase()} ${path} ${op.operationId}`, op);
    }
    const ops = s().app.operations.operations;
    assert.ok(ops.length > 0);
    const ids = new Set<string>();
    for (const op of ops) {
      assert.ok(!ids.has(op.id), `operationId ${op.id} is unique`);
      ids.add(op.id);
      if (op.websocket) continue;
      const found = seen.get(`${op.method} ${toOpenApiPath(op.url)} ${op.id}`);
      assert.ok(found, `${op.id} (${op.method} ${op.url}) is in the document`);
      assert.ok(found.responses && Object.keys(found.responses).length > 0, `${op.id} declares responses`);
    }
    assert.ok(!('/healthz' in doc.paths) && !('/metrics' in doc.paths), 'system routes are hidden');
  });

  it('serves the /docs reference page and its assets locally (works offline)', async () => {
    const page = await s().request({ method: 'GET', url: '/docs', token: null });
    const html = page.statusCode === 302 ? await s().request({ method: 'GET', url: page.headers.location as string, token: null }) : page;
    assert.equal(html.statusCode, 200);
    assert.match(html.headers['content-type'] as string, /text\/html/);
    assert.doesNotMatch(html.body, /https?:\/\/(unpkg|cdn|cdnjs|jsdelivr)/i, 'no CDN references');
    const assets = [...html.body.matchAll(/(?:src|href)="([^"]+\.(?:js|css))"/g)].map((m) => m[1]!);
    assert.ok(assets.length >= 2, `page loads local assets: ${assets.join(', ')}`);
    for (const asset of assets) {
      const url = asset.startsWith('/') ? asset : `/docs/${asset.replace(/^\.\//, '')}`;
      const res = await s().request({ method: 'GET', url, token: null });
      assert.equal(res.statusCode, 200, url);
      assert.ok(res.rawPayload.length > 100, url);
    }
    const init = await s().request({ method: 'GET', url: '/docs/json', token: null });
    assert.equal(init.statusCode, 200);
    assert.equal(init.json().openapi, '3.1.0');
  });
});
