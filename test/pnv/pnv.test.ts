import { before, it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDatabase, useServer } from '../helpers/harness.js';

function multipart(fields: Record<string, string>, file?: { name: string; content: string }) {
  const boundary = '----sbtest7MA4YWxkTrZu0gW';
  const chunks: string[] = [];
  for (const [k, v] of Object.entries(fields)) chunks.push(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`);
  if (file) chunks.push(`--${boundary}\r\nContent-Disposition: form-data; name="csv"; filename="${file.name}"\r\nContent-Type: text/csv\r\n\r\n${file.content}\r\n`);
  chunks.push(`--${boundary}--\r\n`);
  return { payload: chunks.join(''), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

eachDatabase('Phone number validation', (dialect) => {
  const s = useServer(dialect);
  let space: string;
  let token: string;

  before(async () => {
    space = await s().createSpace();
    token = await s().createToken(space, ['pnv:r', 'pnv:w']);
  });

  const single = (qs: string, t = token) => s().request({ method: 'GET', url: `/apispaces/${space}/phonevalidation/single?${qs}`, token: t });

  it('validates single numbers offline', async () => {
    const mobile = await single('phoneNumber=%2B447400123456');
    assert.equal(mobile.statusCode, 200);
    assert.deepEqual(mobile.json(), { phoneNumber: '447400123456', status: 'On', countryIdd: '44', countryCode: 'GB', numberType: 'MOBILE' });
    assert.equal((await single('phoneNumber=07400123456&countryCode=GBR')).json().phoneNumber, '447400123456');
    assert.equal((await single('phoneNumber=07400123456&countryCode=GB')).json().status, 'On');
    assert.deepEqual((await single('phoneNumber=447400123456&countryCode=FR')).json().status, 'CountryMismatch');
    const bad = (await single('phoneNumber=4474001')).json();
    assert.equal(bad.status, 'BadNumber');
    assert.equal((await single('phoneNumber=hello')).json().status, 'BadNumber');
    assert.equal((await single('phoneNumber=442079460000')).json().status, 'NotProvisioned');
    const badCountry = await single('phoneNumber=447400123456&countryCode=XYZ');
    assert.deepEqual([badCountry.statusCode, badCountry.json().code], [400, 'ValidationFailed']);
    const missing = await s().request({ method: 'GET', url: `/apispaces/${space}/phonevalidation/single`, token });
    assert.equal(missing.statusCode, 400);
    assert.equal(missing.json().validationFailures[0].paramName, 'query.phoneNumber');
    assert.equal((await single('phoneNumber=447400123456', await s().createToken(space, ['msg:r']))).statusCode, 403);
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${space}/phonevalidation/single?phoneNumber=1`, token: null })).statusCode, 401);
  });

  it('runs a bulk job and produces the result CSV', async () => {
    const csv = 'name;mobile\r\nJo;07400 123456\r\nAl;+44 20 7946 0000\r\nBo;12345\r\nCy;\r\n"Dee; Jr";07400123457\r\n';
    const up = multipart({ separator: 'semicolon', country: 'GBR', isHeader: 'true', isInternational: 'false', phoneField: 'mobile' }, { name: 'people.csv', content: csv });
    const res = await s().request({ method: 'POST', url: `/apispaces/${space}/phonevalidation/bulk`, token, ...up });
    assert.equal(res.statusCode, 200, res.body);
    const jobId = res.json();
    assert.ok(Number.isInteger(jobId) && jobId > 0);
    await s().container.worker!.idle();
    const job = (await s().request({ method: 'GET', url: `/apispaces/${space}/phonevalidation/bulk/${jobId}`, token })).json();
    assert.equal(job.status, 'Completed');
    assert.equal(job.percentComplete, 100);
    assert.equal(job.phoneNumberCount, 4);
    assert.equal(job.invalidCount, 1);
    assert.equal(job.countryIsoCode, 'gbr');
    assert.equal(job.csvDelimiter, ';');
    assert.equal(job.hasHeader, true);
    assert.equal(job.numberColumnName, 'mobile');
    assert.equal(job.filename, 'people.csv');
    assert.equal(job.statusFlag, 'RequiresAttention');
    assert.equal(job.filePath, `http://localhost:8080/apispaces/${space}/phonevalidation/bulk/${jobId}/result`);
    const result = await s().request({ method: 'GET', url: `/apispaces/${space}/phonevalidation/bulk/${jobId}/result`, token });
    assert.equal(result.statusCode, 200);
    assert.match(String(result.headers['content-type']), /^text\/csv/);
    assert.equal(result.headers['content-disposition'], `attachment; filename="${jobId}-results.csv"`);
    const lines = result.body.trim().split('\r\n');
    assert.equal(lines[0], 'Phone Number,Original Phone Number,Status,MCCMNC,Network Name,Network Prefix,Country IDD,Is Ported,Ported From Network Name,Roaming Network Name,Roaming Network Prefix,Roaming Country IsoCode,Roaming Country IDD');
    assert.deepEqual(lines.slice(1), [
      '447400123456,07400 123456,On,,,,44,False,,,,,',
      '442079460000,+44 20 7946 0000,Not Provisioned,,,,44,False,,,,,',
      '4412345,12345,Bad Number,,,,44,False,,,,,',
      '447400123457,07400123457,On,,,,44,False,,,,,',
    ]);
    const list = (await s().request({ method: 'GET', url: `/apispaces/${space}/phonevalidation/bulk`, token })).json();
    assert.equal(list[0].jobId, jobId);
  });

  it('takes a column number without a header', async () => {
    const up = multipart({ separator: 'comma', country: 'USA', isHeader: 'false', isInternational: 'true', phoneField: '2' }, { name: 'n.csv', content: 'a,447400123456\nb,12025550123\n' });
    const jobId = (await s().request({ method: 'POST', url: `/apispaces/${space}/phonevalidation/bulk`, token, ...up })).json();
    await s().container.worker!.idle();
    const job = (await s().request({ method: 'GET', url: `/apispaces/${space}/phonevalidation/bulk/${jobId}`, token })).json();
    assert.deepEqual([job.status, job.phoneNumberCount, job.invalidCount, job.statusFlag], ['Completed', 2, 0, 'NotDefined']);
  });

  it('rejects bad uploads with 400 and unknown jobs with 404', async () => {
    const noParts = multipart({ separator: 'pipe' });
    const r = await s().request({ method: 'POST', url: `/apispaces/${space}/phonevalidation/bulk`, token, ...noParts });
    assert.equal(r.statusCode, 400);
    assert.deepEqual(r.json().validationFailures.map((f: { paramName: string }) => f.paramName).sort(), ['country', 'csv', 'isHeader', 'isInternational', 'phoneField', 'separator']);
    const badCol = multipart({ separator: 'comma', country: 'GBR', isHeader: 'true', isInternational: 'false', phoneField: 'phone' }, { name: 'x.csv', content: 'mobile\n07400123456\n' });
    const col = await s().request({ method: 'POST', url: `/apispaces/${space}/phonevalidation/bulk`, token, ...badCol });
    assert.deepEqual([col.statusCode, col.json().validationFailures[0].paramName], [400, 'phoneField']);
    const json = await s().request({ method: 'POST', url: `/apispaces/${space}/phonevalidation/bulk`, token, payload: { csv: 'x' } });
    assert.equal(json.statusCode, 415);
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${space}/phonevalidation/bulk/999999`, token })).statusCode, 404);
    const other = await s().createSpace();
    const jobs = (await s().request({ method: 'GET', url: `/apispaces/${space}/phonevalidation/bulk`, token })).json();
    assert.equal((await s().request({ method: 'GET', url: `/apispaces/${other}/phonevalidation/bulk/${jobs[0].jobId}` })).statusCode, 404);
  });
});

eachDatabase('Phone number validation: cancelled jobs', (dialect) => {
  const s = useServer(dialect, { start: false });
  it('cancels a queued job whose API space was deleted', async () => {
    const space = await s().createSpace();
    const token = await s().createToken(space, ['pnv:w']);
    const up = multipart({ separator: 'comma', country: 'GBR', isHeader: 'false', isInternational: 'true', phoneField: '1' }, { name: 'n.csv', content: '447400123456\n' });
    const jobId = (await s().request({ method: 'POST', url: `/apispaces/${space}/phonevalidation/bulk`, token, ...up })).json();
    assert.equal((await s().request({ method: 'DELETE', url: `/apispaces/${space}`, headers: { 'content-type': 'application/json' } })).statusCode, 204);
    s().container.spaces.invalidate(space);
    await s().container.start();
    await s().container.worker!.idle();
    const row = await s().container.platform.db.selectFrom('pnv_jobs').select(['status']).where('job_id', '=', jobId).executeTakeFirstOrThrow();
    assert.equal(row.status, 'Cancelled');
  });
});
