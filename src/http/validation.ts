import { createRequire } from 'node:module';
import type { Ajv as AjvClass } from 'ajv';
import type { FormatsPlugin } from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

// Both packages are CommonJS whose real export sits on `.default`.
const require = createRequire(import.meta.url);
const Ajv = require('ajv').default as typeof AjvClass;
const addFormats = require('ajv-formats').default as FormatsPlugin;

function makeAjv(coerce: boolean) {
  const ajv = new Ajv({
    coerceTypes: coerce ? 'array' : false,
    useDefaults: true,
    removeAdditional: false,
    allErrors: true,
    addUsedSchema: false,
    strict: false,
  });
  addFormats(ajv);
  return ajv;
}

/**
 * Request validation. Path, query and header values arrive as strings, so they are coerced to
 * the schema's types (and single query values to arrays). JSON bodies are not: a number where a
 * string belongs is a 400 ValidationFailed (conventions.md §4), not silently turned into "5".
 */
export function createValidatorCompiler(): FastifySchemaCompiler<unknown> {
  const body = makeAjv(false);
  const parts = makeAjv(true);
  return ({ schema, httpPart }) => (httpPart === 'body' ? body : parts).compile(schema as object) as never;
}
