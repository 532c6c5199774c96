import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import pino, { type Logger } from 'pino';
import { AggregatorRegistry, Registry } from 'prom-client';
import type { Config, SigningKey } from './config/config.js';
import { openDatabase, type DatabaseHandle } from './storage/db.js';
import { migrate } from './storage/migrations/index.js';
import { inTransaction } from './storage/uow.js';
import { systemClock, type Clock } from './lib/clock.js';
import { randomIds, type Ids } from './lib/ids.js';
import { createSecretBox } from './lib/secrets.js';
import { createLocalBus, createRedisBus, createThreadBus, type EventBus } from './events/bus.js';
import { createEventLog } from './events/log.js';
import { createJobQueue } from './delivery/queue.js';
import { createLocalJobs } from './delivery/local-jobs.js';
import { registerQueueMetrics } from './delivery/metrics.js';
import { createGroupCommit } from './storage/group-commit.js';
import { createWorker, sharedSlots, type JobHandler, type Worker } from './delivery/worker.js';
import { createCredentials, type Credentials } from './auth/credentials.js';
import { createSpaceDirectory, type SpaceDirectory } from './auth/space-directory.js';
import type { Platform } from './platform.js';
import type { ModuleDefinition, ModuleInstance } from './modules/module.js';
import type { Services } from './modules/services.js';
import { moduleDefinitions } from './modules/index.js';
import { startWorkerThread, threadBusName, type WorkerThread } from './worker-thread.js';

export interface Container {
  platform: Platform;
  credentials: Credentials;
  spaces: SpaceDirectory;
  services: Services;
  modules: Array<{ definition: ModuleDefinition; instance: ModuleInstance }>;
  worker: Worker | undefined;
  state: { closing: boolean };
  /** Starts workers (or their thread, WORKER_THREAD) and module background tasks. */
  start(): Promise<void>;
  /** The text of `/metrics`: this container's registry, with the workers' thread's when there is one. */
  metrics(): Promise<string>;
  close(): Promise<void>;
}

export interface ContainerOptions {
  clock?: Clock;
  ids?: Ids;
  log?: Logger;
  /** PostgreSQL schema to work in (tests isolate by schema). */
  schema?: string;
  /** Redis channel prefix (tests isolate by prefix). */
  busPrefix?: string;
  /** The bus to use instead of a local or Redis one (a process with a worker thread, src/worker-thread.ts). */
  bus?: EventBus;
  /** Overrides for worker timing (tests). */
  worker?: { leaseMs?: number; idlePollMs?: number; backoffBaseMs?: number; owner?: string; slots?: SharedArrayBuffer };
  modules?: ModuleDefinition[];
  /** SQLite: another container of this process checkpoints the file (the workers' thread's, src/worker-thread.ts). */
  checkpointedElsewhere?: boolean;
}

/** Keys and secrets generated at first start and kept in DATA_DIR (zero-configuration start). */
function localSecrets(config: Config): { signingKeys: SigningKey[]; installationSecret: string } {
  if (config.tokenSigningKeys.length && config.installationSecret) {
    return { signingKeys: [...config.tokenSigningKeys], installationSecret: config.installationSecret };
  }
  mkdirSync(config.dataDir, { recursive: true });
  const file = join(config.dataDir, 'keys.json');
  let stored: { signingKeys: SigningKey[]; installationSecret: string };
  if (existsSync(file)) stored = JSON.parse(readFileSync(file, 'utf8'));
  else {
    stored = { signingKeys: [{ kid: 'k1', secret: randomBytes(32).toString('base64url') }], installationSecret: randomBytes(32).toString('base64url') };
    writeFileSync(file, JSON.stringify(stored, null, 2), { mode: 0o600 });
  }
  return {
    signingKeys: config.tokenSigningKeys.length ? [...config.tokenSigningKeys] : stored.signingKeys,
    installationSecret: config.installationSecret || stored.installationSecret,
  };
}

/** The composition root: the only place that knows concrete implementations. */
export async function createContainer(given: Config, options: ContainerOptions = {}): Promise<Container> {
  // WORKER_THREAD: this container serves with its workers off; a second one on a worker thread
  // runs them (src/worker-thread.ts).
  const threaded = given.workersEnabled && given.workerThread;
  // The process's PostgreSQL connections (DATABASE_POOL_SIZE) are shared between the two threads.
  const config: Config = threaded ? Object.freeze({ ...given, workersEnabled: false, databasePoolSize: Math.max(2, Math.ceil(given.databasePoolSize / 2)) }) : given;
  const busName = threaded ? threadBusName(given) : undefined;
  const log = options.log ?? pino({ level: config.logLevel });
  const clock = options.clock ?? systemClock;
  const ids = options.ids ?? randomIds;
  const { signingKeys, installationSecret } = localSecrets(config);
  const handle: DatabaseHandle = openDatabase(config.databaseUrl, { schema: options.schema, poolSize: config.databasePoolSize, checkpointer: !options.checkpointedElsewhere });
  if (handle.dialect === 'postgres' && options.schema) {
    await handle.pool!.query(`CREATE SCHEMA IF NOT EXISTS "${options.schema}"`);
  }
  const definitions = options.modules ?? moduleDefinitions;
  await migrate(handle, definitions.flatMap((d) => d.migrations ?? []));

  const bus: EventBus = options.bus ?? (busName ? createThreadBus(busName) : config.redisUrl ? createRedisBus(config.redisUrl, options.busPrefix) : createLocalBus());
  const metrics = new Registry();
  const events = createEventLog({ db: handle.db, dialect: handle.dialect, bus, clock });
  const queue = createJobQueue({ handle, clock, ids });
  // SQLite has one writer; on PostgreSQL commits wait for the WAL flush, so several groups overlap.
  const group = createGroupCommit(handle.db, { inFlight: handle.dialect === 'sqlite' ? 1 : Math.max(1, Math.floor(config.databasePoolSize / 2)) });
  const handlers = new Map<string, JobHandler>();
  let worker: Worker | undefined;
  let thread: WorkerThread | undefined;
  const localJobs = createLocalJobs(queue, () => worker, (kind) => handlers.has(kind), () => thread?.taker);
  const platform: Platform = {
    config, handle, db: handle.db, clock, ids, log, bus, events, queue, metrics, signingKeys,
    secrets: createSecretBox(installationSecret),
    transaction: (fn) => inTransaction(handle.db, fn),
    groupCommit: (fn) => group.submit(fn),
    localJobs,
  };
  const credentials = createCredentials({ config, db: handle.db, clock, bus, signingKeys });
  const spaces = createSpaceDirectory({ db: handle.db, bus, now: () => clock.now() });

  // Each module is built with the services of those before it; they add their own.
  const services = { credentials, spaces } as Services;
  const modules: Container['modules'] = [];
  for (const definition of definitions) {
    modules.push({ definition, instance: await definition.setup({ ...platform, services }) });
  }

  for (const m of modules) for (const [kind, h] of Object.entries(m.instance.jobs ?? {})) handlers.set(kind, h);

  registerQueueMetrics(queue, metrics);

  const state = { closing: false };
  let stopWaking: (() => void) | undefined;
  return {
    platform, credentials, spaces, services, modules, state,
    get worker() {
      return worker;
    },
    async start() {
      if (config.workersEnabled && !worker) {
        worker = createWorker({
          queue, clock, log, handlers,
          owner: options.worker?.owner ?? `${hostname()}:${process.pid}:${ids.uuid().slice(0, 8)}`,
          concurrency: config.workerConcurrency,
          leaseMs: options.worker?.leaseMs,
          idlePollMs: options.worker?.idlePollMs,
          backoffBaseMs: options.worker?.backoffBaseMs,
          metrics,
          // The workers' thread: free slots counted where the main thread can reserve them.
          slots: options.worker?.slots ? sharedSlots(options.worker.slots) : undefined,
        });
        worker.start();
      }
      if (threaded && !thread) {
        const names = options.modules?.map((m) => m.name);
        thread = await startWorkerThread({ ...given, databasePoolSize: config.databasePoolSize }, busName, { schema: options.schema, busPrefix: options.busPrefix, worker: options.worker, modules: names }, log);
        stopWaking = queue.onWake(() => thread!.wake(), { otherProcesses: false });
      }
      for (const m of modules) await m.instance.start?.();
    },
    async metrics() {
      if (!thread) return metrics.metrics();
      return AggregatorRegistry.aggregate([await metrics.getMetricsAsJSON(), await thread.metrics()]).metrics();
    },
    async close() {
      state.closing = true;
      stopWaking?.();
      await thread?.stop();
      for (const m of [...modules].reverse()) await m.instance.stop?.();
      await worker?.stop();
      await queue.close();
      await bus.close();
      await handle.close();
    },
  };
}
