import type { FastifyInstance } from 'fastify';
import type { Platform } from '../platform.js';
import type { SchemaMigration } from '../storage/migrations/types.js';
import type { JobHandler } from '../delivery/worker.js';
import type { Services } from './services.js';

/** Fastify instance with the TypeBox provider, as route plugins receive it. */
export type App = FastifyInstance<any, any, any, any, import('@fastify/type-provider-typebox').TypeBoxTypeProvider>;

export interface ModuleContext extends Platform {
  /** Services of the modules set up before this one (see `modules/index.ts` for the order). */
  readonly services: Services;
}

export interface ModuleInstance {
  /** Registers this module's routes (each with an operationId and an auth policy). */
  routes?(app: App): Promise<void> | void;
  /** Durable job handlers by job kind. */
  jobs?: Record<string, JobHandler>;
  /** Background work started after the HTTP server is ready (only when workers run). */
  start?(): Promise<void> | void;
  stop?(): Promise<void> | void;
}

/** One API group: its schema steps and how to build it. */
export interface ModuleDefinition {
  name: string;
  migrations?: SchemaMigration[];
  setup(ctx: ModuleContext): ModuleInstance | Promise<ModuleInstance>;
}
