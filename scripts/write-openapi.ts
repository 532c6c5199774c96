/**
 * `npm run openapi`: builds the app (in-memory SQLite, no workers) and writes the OpenAPI 3.1
 * document it serves at /openapi.json to docs/openapi.json. test/platform/openapi.test.ts fails
 * when the committed file differs from what the code generates.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../src/config/config.js';
import { createContainer } from '../src/container.js';
import { buildApp } from '../src/app.js';

export const OPENAPI_FILE = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'openapi.json');

/** The generated document, serialised exactly as it is committed. */
export async function generateOpenApi(): Promise<string> {
  const config = loadConfig({
    DATABASE_URL: ':memory:',
    DATA_DIR: '/nonexistent-switchboard-openapi',
    TOKEN_SIGNING_KEYS: 'k1:openapi-generation-only-0123456789abcdef',
    INSTALLATION_SECRET: 'openapi-generation-only',
    WORKERS_ENABLED: 'false',
    LOG_LEVEL: 'silent',
  });
  const container = await createContainer(config, { log: pino({ level: 'silent' }) });
  const app = await buildApp(container);
  try {
    const doc = (app as unknown as { swagger(): unknown }).swagger();
    return `${JSON.stringify(doc, null, 2)}\n`;
  } finally {
    await app.close();
    await container.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const text = await generateOpenApi();
  writeFileSync(OPENAPI_FILE, text);
  const doc = JSON.parse(text) as { paths: Record<string, Record<string, unknown>> };
  const ops = Object.values(doc.paths).reduce((n, p) => n + Object.keys(p).length, 0);
  console.log(`wrote ${OPENAPI_FILE} (${Object.keys(doc.paths).length} paths, ${ops} operations)`);
}
