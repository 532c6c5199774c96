/**
 * Phone Number Validation (phone-validation.md): single offline lookups, and bulk jobs over an
 * uploaded CSV run by the durable queue (`pnv.bulk`), producing a result CSV.
 */
import { parse } from 'csv-parse/sync';
import type { ModuleContext } from '../module.js';
import type { JobContext } from '../../delivery/worker.js';
import { PermanentFailure } from '../../delivery/worker.js';
import { errors, type ValidationFailure } from '../../http/errors.js';
import { iso } from '../../lib/clock.js';
import { alpha2, toAlpha2 } from '../../channels/sms/countries.js';
import { csvStatus, lookupOffline, type Lookup, type PnvStatus } from './pnv.lookup.js';
import type { MultipartPart } from './pnv.multipart.js';

export interface PnvJobRow {
  job_id: number;
  api_space_id: string;
  user_id: number;
  filename: string;
  country_iso_code: string;
  phone_number_count: number;
  invalid_count: number;
  status: string;
  percent_complete: number;
  number_column: string;
  delimiter: string;
  has_header: number;
  is_international: number;
  status_flag: string;
  input: string;
  result: string | null;
  created_on: string;
  updated_on: string;
}

declare module '../../storage/schema.js' {
  interface Database {
    pnv_jobs: PnvJobRow;
  }
}

export const BULK_JOB = 'pnv.bulk';
export const MAX_ROWS = 1_000_000;
const RETENTION_MS = 30 * 86_400_000;
const SEPARATORS: Record<string, string> = { comma: ',', semicolon: ';', tab: '\t' };
const STATUSES: readonly PnvStatus[] = ['On', 'Off', 'Dead', 'NotProvisioned', 'BadNumber', 'CountryMismatch'];
export const RESULT_HEADER = ['Phone Number', 'Original Phone Number', 'Status', 'MCCMNC', 'Network Name', 'Network Prefix', 'Country IDD', 'Is Ported',
  'Ported From Network Name', 'Roaming Network Name', 'Roaming Network Prefix', 'Roaming Country IsoCode', 'Roaming Country IDD'];

const csvCell = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
const bool = (v: string | undefined) => (v === undefined ? undefined : /^(true|1|yes)$/i.test(v.trim()) ? true : /^(false|0|no)$/i.test(v.trim()) ? false : undefined);

export function createPnvService(ctx: ModuleContext) {
  const { db, clock } = ctx;
  const offline = (STATUSES.includes(ctx.config.pnvOfflineStatus as PnvStatus) ? ctx.config.pnvOfflineStatus : 'On') as PnvStatus;

  function single(phoneNumber: string, countryCode: string | undefined): Lookup {
    let country: string | undefined;
    if (countryCode !== undefined && countryCode !== '') {
      country = /^[A-Z]{2,3}$/.test(countryCode) ? toAlpha2(countryCode) : undefined;
      if (!country) throw errors.invalidField('query.countryCode', 'Must be an ISO 3166-1 alpha-2 or alpha-3 code in capitals');
    }
    return lookupOffline(phoneNumber, country, offline);
  }

  const view = (r: PnvJobRow) => ({
    jobId: Number(r.job_id), userId: r.user_id, filename: r.filename, countryIsoCode: r.country_iso_code,
    phoneNumberCount: r.phone_number_count, invalidCount: r.invalid_count, liveInfoCount: 0, chargeableLiveInfoCount: 0,
    status: r.status as 'Queued', percentComplete: r.percent_complete, created: r.created_on, updated: r.updated_on,
    minRetention: iso(Date.parse(r.created_on) + RETENTION_MS),
    filePath: r.status === 'Completed' ? `${ctx.config.publicBaseUrl}/apispaces/${r.api_space_id}/phonevalidation/bulk/${r.job_id}/result` : '',
    numberColumnName: r.number_column, csvDelimiter: r.delimiter, hasHeader: r.has_header === 1, statusFlag: r.status_flag as 'NotDefined', apiSpaceId: r.api_space_id,
  });

  function readRows(input: string, delimiter: string): string[][] {
    return parse(input, { delimiter, relax_column_count: true, skip_empty_lines: true, bom: true, relax_quotes: true }) as string[][];
  }

  async function createJob(apiSpaceId: string, userId: number, parts: MultipartPart[]) {
    const failures: ValidationFailure[] = [];
    const field = (name: string) => parts.find((p) => p.name === name && p.filename === undefined)?.data.toString('utf8').trim();
    const file = parts.find((p) => p.name === 'csv');
    if (!file) failures.push({ paramName: 'csv', message: 'A CSV file part is required' });
    const separator = field('separator');
    const delimiter = separator ? SEPARATORS[separator.toLowerCase()] : undefined;
    if (!delimiter) failures.push({ paramName: 'separator', message: 'Required: comma, semicolon or tab' });
    const country = field('country');
    if (!country || !/^[A-Za-z]{3}$/.test(country) || !alpha2(country)) failures.push({ paramName: 'country', message: 'Required: an ISO 3166-1 alpha-3 code' });
    const isHeader = bool(field('isHeader'));
    if (isHeader === undefined) failures.push({ paramName: 'isHeader', message: 'Required: true or false' });
    const isInternational = bool(field('isInternational'));
    if (isInternational === undefined) failures.push({ paramName: 'isInternational', message: 'Required: true or false' });
    const phoneField = field('phoneField');
    if (!phoneField) failures.push({ paramName: 'phoneField', message: 'Required: the header name or 1-based column number' });
    if (failures.length) throw errors.validation(failures);
    const input = file!.data.toString('utf8');
    let rows: string[][];
    try {
      rows = readRows(input, delimiter!);
    } catch (err) {
      throw errors.invalidField('csv', `The CSV file cannot be read: ${(err as Error).message}`);
    }
    if (rows.length - (isHeader ? 1 : 0) > MAX_ROWS) throw errors.invalidField('csv', `At most ${MAX_ROWS} rows`);
    if (columnIndex(rows[0] ?? [], phoneField!, isHeader!) < 0) throw errors.invalidField('phoneField', `Column "${phoneField}" is not in the file`);
    const now = iso(clock.now());
    return ctx.transaction(async (uow) => {
      const row = await uow.tx.insertInto('pnv_jobs').values({
        api_space_id: apiSpaceId, user_id: userId, filename: file!.filename || 'upload.csv', country_iso_code: country!.toLowerCase(),
        phone_number_count: 0, invalid_count: 0, status: 'Queued', percent_complete: 0, number_column: phoneField!, delimiter: delimiter!,
        has_header: isHeader ? 1 : 0, is_international: isInternational ? 1 : 0, status_flag: 'NotDefined', input, result: null, created_on: now, updated_on: now,
      } as never).returning('job_id').executeTakeFirstOrThrow();
      const jobId = Number(row.job_id);
      await ctx.queue.enqueue(uow, { kind: BULK_JOB, apiSpaceId, payload: { v: 1, jobId }, dedupeKey: `pnv:${jobId}` });
      return jobId;
    });
  }

  function columnIndex(first: string[], phoneField: string, hasHeader: boolean): number {
    if (hasHeader) {
      const byName = first.findIndex((h) => h.trim().toLowerCase() === phoneField.toLowerCase());
      if (byName >= 0) return byName;
    }
    const n = Number(phoneField);
    return Number.isInteger(n) && n >= 1 && (!hasHeader || n <= first.length) ? n - 1 : -1;
  }

  /** The durable job: idempotent (a completed job is left alone; a re-run starts over). */
  async function runJob(jobCtx: JobContext): Promise<void> {
    const jobId = Number(jobCtx.job.payload.jobId);
    const job = await db.selectFrom('pnv_jobs').selectAll().where('job_id', '=', jobId).executeTakeFirst();
    if (!job || job.status === 'Completed' || job.status === 'Cancelled') return;
    const touch = (fields: Partial<PnvJobRow>) => db.updateTable('pnv_jobs').set({ ...fields, updated_on: iso(clock.now()) }).where('job_id', '=', jobId).execute();
    // phone-validation.md §3.3: a job whose API space was deleted ends `Cancelled`.
    const spaceGone = async () => !(await ctx.services.spaces.get(job.api_space_id));
    if (await spaceGone()) return void (await touch({ status: 'Cancelled' }));
    try {
      await touch({ status: 'Processing', percent_complete: 0 });
      const rows = readRows(job.input, job.delimiter);
      const col = columnIndex(rows[0] ?? [], job.number_column, job.has_header === 1);
      if (col < 0) throw new PermanentFailure(`column ${job.number_column} not found`);
      const data = job.has_header === 1 ? rows.slice(1) : rows;
      const country = alpha2(job.country_iso_code);
      const out: string[] = [RESULT_HEADER.join(',')];
      let count = 0;
      let invalid = 0;
      let lastTouch = clock.now();
      for (let i = 0; i < data.length; i++) {
        const original = (data[i]![col] ?? '').trim();
        if (original) {
          count++;
          const r = lookupOffline(original, job.is_international === 1 ? undefined : country, offline, job.is_international === 1);
          if (r.status === 'BadNumber' || r.status === 'CountryMismatch') invalid++;
          out.push([r.phoneNumber, original, csvStatus(r.status), '', '', '', r.countryIdd, 'False', '', '', '', '', ''].map(csvCell).join(','));
        }
        if (i % 5000 === 4999 && clock.now() - lastTouch > 1000) {
          lastTouch = clock.now();
          await touch({ percent_complete: Math.floor(((i + 1) * 100) / data.length), phone_number_count: count, invalid_count: invalid });
          await jobCtx.heartbeat();
          if (await spaceGone()) return void (await touch({ status: 'Cancelled' }));
        }
      }
      await touch({
        status: 'Completed', percent_complete: 100, phone_number_count: count, invalid_count: invalid, result: out.join('\r\n') + '\r\n',
        status_flag: count > 0 && invalid / count > 0.1 ? 'RequiresAttention' : 'NotDefined',
      });
    } catch (err) {
      if (err instanceof PermanentFailure) {
        await touch({ status: 'Failed' });
        return;
      }
      throw err;
    }
  }

  return {
    single,
    createJob,
    runJob,
    async list(apiSpaceId: string) {
      const rows = await db.selectFrom('pnv_jobs').selectAll().where('api_space_id', '=', apiSpaceId).orderBy('job_id', 'desc').limit(5000).execute();
      return rows.map(view);
    },
    async get(apiSpaceId: string, jobId: number) {
      const row = await db.selectFrom('pnv_jobs').selectAll().where('api_space_id', '=', apiSpaceId).where('job_id', '=', jobId).executeTakeFirst();
      if (!row) throw errors.notFound('Job');
      return view(row);
    },
    async result(apiSpaceId: string, jobId: number): Promise<string> {
      const row = await db.selectFrom('pnv_jobs').select(['status', 'result']).where('api_space_id', '=', apiSpaceId).where('job_id', '=', jobId).executeTakeFirst();
      if (!row) throw errors.notFound('Job');
      return row.status === 'Completed' ? row.result ?? '' : '';
    },
  };
}

export type PnvService = ReturnType<typeof createPnvService>;
