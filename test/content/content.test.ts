import { it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';
import { ManualClock } from '../../src/lib/clock.js';

const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');

function multipart(parts: Array<{ name: string; filename?: string; type?: string; data: Buffer | string }>) {
  const boundary = '----sbtest' + Math.random().toString(16).slice(2);
  const chunks: Buffer[] = [];
  for (const p of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"${p.filename ? `; filename="${p.filename}"` : ''}\r\n`;
    if (p.type) head += `Content-Type: ${p.type}\r\n`;
    chunks.push(Buffer.from(head + '\r\n'), Buffer.from(p.data), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

eachDatabase('content', (dialect) => {
  const s = useServer(dialect);

  it('uploads JSON base64 (exactly 200) and downloads without a credential', async () => {
    const space = await s().createSpace();
    const token = await s().createToken(space, ['content:w']);
    const up = await s().request({ method: 'POST', url: `/apispaces/${space}/content`, token, payload: { name: 'hello.txt', type: 'text/plain', data: Buffer.from('Hello, world').toString('base64') } });
    assert.equal(up.statusCode, 200, up.body);
    const f = up.json();
    assert.match(f.id, /^[0-9a-f-]{36}$/);
    assert.equal(f.url, `http://localhost:8080/apispaces/${space}/content/${f.id}`);
    assert.deepEqual({ name: f.name, type: f.type, folder: f.folder, size: f.size }, { name: 'hello.txt', type: 'text/plain', folder: 'content', size: 12 });
    assert.match(f._createdBy, /^access:/);

    const path = new URL(f.url).pathname;
    const down = await s().request({ method: 'GET', url: path, token: null, headers: { 'if-modified-since': 'Mon, 26 Jul 1997 05:00:00 GMT' } });
    assert.equal(down.statusCode, 200);
    assert.equal(down.body, 'Hello, world');
    assert.equal(down.headers['content-type'], 'text/plain');
    assert.equal(down.headers['content-length'], '12');
    assert.equal(down.headers['x-content-type-options'], 'nosniff');
    assert.match(String(down.headers['content-disposition']), /^inline; filename="hello.txt"/);
    assert.match(String(down.headers['cache-control']), /^public/);
    const etag = down.headers.etag as string;
    const again = await s().request({ method: 'GET', url: path, token: null, headers: { 'if-none-match': etag } });
    assert.equal(again.statusCode, 304);
    const part = await s().request({ method: 'GET', url: path, token: null, headers: { range: 'bytes=7-' } });
    assert.equal(part.statusCode, 206);
    assert.equal(part.body, 'world');
    assert.equal(part.headers['content-range'], 'bytes 7-11/12');
    assert.equal((await s().request({ method: 'GET', url: path, token: null, headers: { range: 'bytes=50-60' } })).statusCode, 416);

    const reader = await s().createToken(space, ['content:w']);
    assert.equal((await s().request({ method: 'DELETE', url: path, token: reader })).statusCode, 403);
    const del = await s().request({ method: 'DELETE', url: path, headers: { 'content-type': 'application/json' } });
    assert.equal(del.statusCode, 200);
    assert.equal(del.body, '');
    assert.equal((await s().request({ method: 'GET', url: path, token: null })).statusCode, 404);
    assert.equal((await s().request({ method: 'DELETE', url: path })).statusCode, 404);
  });

  it('accepts multipart (part "file") and raw bytes with Content-Filename', async () => {
    const space = await s().createSpace();
    const form = multipart([{ name: 'file', filename: 'pixel.png', type: 'application/octet-stream', data: png }, { name: 'folder', data: 'avatars' }]);
    const up = await s().request({ method: 'POST', url: `/apispaces/${space}/content`, headers: { 'content-type': form.contentType }, payload: form.payload });
    assert.equal(up.statusCode, 200, up.body);
    assert.deepEqual({ name: up.json().name, type: up.json().type, folder: up.json().folder, size: up.json().size }, { name: 'pixel.png', type: 'image/png', folder: 'avatars', size: png.length });
    const down = await s().request({ method: 'GET', url: new URL(up.json().url).pathname, token: null });
    assert.deepEqual(down.rawPayload, png);
    assert.equal(down.headers['content-type'], 'image/png');
    const { bytes } = (await s().container.services.content.read(space, up.json().id))!;
    assert.deepEqual(bytes, png);

    const raw = await s().request({ method: 'POST', url: `/apispaces/${space}/content?folder=docs`, headers: { 'content-type': 'application/pdf', 'content-filename': 'r%C3%A9sum%C3%A9.pdf' }, payload: Buffer.from('%PDF-1.4') });
    assert.equal(raw.statusCode, 200, raw.body);
    assert.equal(raw.json().name, 'résumé.pdf');
    assert.equal(raw.json().folder, 'docs');
    const d = await s().request({ method: 'GET', url: new URL(raw.json().url).pathname, token: null });
    assert.match(String(d.headers['content-disposition']), /filename\*=UTF-8''r%C3%A9sum%C3%A9\.pdf/);
    // A JSON file uploaded raw is a file, not the JSON upload form.
    const doc = '{"orders": [1, 2]}';
    const file = await s().request({ method: 'POST', url: `/apispaces/${space}/content`, headers: { 'content-type': 'application/json', 'content-filename': 'orders.json' }, payload: doc });
    assert.equal(file.statusCode, 200, file.body);
    assert.deepEqual({ name: file.json().name, type: file.json().type, size: file.json().size }, { name: 'orders.json', type: 'application/json', size: doc.length });
    assert.equal((await s().request({ method: 'GET', url: new URL(file.json().url).pathname, token: null })).body, doc);
  });

  it('rejects bad uploads with 4xx', async () => {
    const space = await s().createSpace();
    const url = `/apispaces/${space}/content`;
    const post = (payload: unknown, headers: Record<string, string> = {}) => s().request({ method: 'POST', url, headers, payload: payload as string });
    const expect = async (res: Awaited<ReturnType<typeof post>>, status: number, param?: string) => {
      assert.equal(res.statusCode, status, res.body);
      if (param) assert.ok(res.json().validationFailures.some((f: { paramName: string }) => f.paramName === param), res.body);
    };
    await expect(await post({ name: 'x.exe', type: 'application/x-msdownload', data: 'AAAA' }), 400, 'type');
    await expect(await post({ name: 'a.txt', type: 'text/plain', data: 'not base64!!' }), 400, 'data');
    await expect(await post({ name: 'a.txt', type: 'text/plain', data: '' }), 400, 'data');
    await expect(await post({ name: 'a.txt', data: 'AAAA' }), 400, 'type');
    await expect(await post({ name: 'x'.repeat(256), type: 'text/plain', data: 'AAAA' }), 400, 'name');
    await expect(await post({ name: 'a.txt', type: 'text/plain', data: 'AAAA' }, {}).then(() => s().request({ method: 'POST', url: `${url}?folder=../x`, payload: { name: 'a.txt', type: 'text/plain', data: 'AAAA' } })), 400);
    await expect(await post('{"name": ', { 'content-type': 'application/json' }), 400);
    await expect(await post('abc', { 'content-type': 'text/plain' }), 400, 'header.content-filename');
    await expect(await post('--x\r\n', { 'content-type': 'multipart/form-data; boundary=x' }), 400);
    await expect(await post(Buffer.alloc(20 * 1024 * 1024 + 1, 65), { 'content-type': 'text/plain', 'content-filename': 'big.txt' }), 413);
    await expect(await post({ name: 'big.txt', type: 'text/plain', data: Buffer.alloc(21 * 1024 * 1024, 66).toString('base64') }), 413);
    // Above the default 1 MiB JSON limit but within the upload limits.
    await expect(await post({ name: 'mid.txt', type: 'text/plain', data: Buffer.alloc(3 * 1024 * 1024, 67).toString('base64') }), 200);
    await expect(await s().request({ method: 'POST', url, token: null, payload: { name: 'a.txt', type: 'text/plain', data: 'AAAA' } }), 401);
    const noPerm = await s().createToken(space, ['chan:r']);
    await expect(await s().request({ method: 'POST', url, token: noPerm, payload: { name: 'a.txt', type: 'text/plain', data: 'AAAA' } }), 403);
    await expect(await s().request({ method: 'GET', url: `${url}/nope`, token: null }), 404);
  });
});

eachDatabase('content and template retention', (dialect) => {
  const clock = new ManualClock();
  const s = useServer(dialect, { clock });

  it('purges files after contentDays and deleted templates after deletedProfilesDays', async () => {
    const a = await s().createSpace('a');
    const b = await s().createSpace('b');
    const put = await s().request({ method: 'PUT', url: `/apispaces/${b}/retention`, payload: { contentDays: null, deletedProfilesDays: 60 } });
    assert.equal(put.statusCode, 200, put.body);
    const upload = async (space: string) => (await s().request({ method: 'POST', url: `/apispaces/${space}/content`, payload: { name: 'a.txt', type: 'text/plain', data: 'QUJD' } })).json();
    const fa = await upload(a);
    const fb = await upload(b);
    for (const space of [a, b]) {
      await s().request({ method: 'POST', url: `/apispaces/${space}/templates`, payload: { id: 't', name: 't', messageParts: [{ type: 'text/plain', data: 'x' }] } });
      await s().request({ method: 'DELETE', url: `/apispaces/${space}/templates/t` });
    }
    clock.advance(31 * 86_400_000);
    await s().container.platform.queue.enqueueNow({ kind: 'content.purge', payload: { v: 1 } });
    await s().container.platform.queue.enqueueNow({ kind: 'templates.purge', payload: { v: 1 } });
    await s().container.worker!.idle();
    assert.equal((await s().request({ method: 'GET', url: new URL(fa.url).pathname, token: null })).statusCode, 404);
    assert.equal((await s().request({ method: 'GET', url: new URL(fb.url).pathname, token: null })).statusCode, 200);
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${a}/templates/t?includeDeleted=true` })).statusCode, 404);
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${b}/templates/t?includeDeleted=true` })).statusCode, 200);
  });
});

eachDatabase('content: an installation\'s own MIME allow-list (CONTENT_TYPES)', (dialect) => {
  const s = useServer(dialect, { env: { CONTENT_TYPES: 'image/*, application/x-custom' } });

  it('allows exactly the configured types', async () => {
    const space = await s().createSpace();
    const up = (type: string, name: string) => s().request({ method: 'POST', url: `/apispaces/${space}/content`, headers: { 'content-type': type, 'content-filename': name }, payload: Buffer.from('abc') });
    assert.equal((await up('image/tiff', 'a.tif')).statusCode, 200);
    assert.equal((await up('application/x-custom', 'a.bin')).statusCode, 200);
    const pdf = await up('application/pdf', 'a.pdf');
    assert.equal(pdf.statusCode, 400, pdf.body);
    assert.equal(pdf.json().validationFailures[0].paramName, 'type');
  });
});
