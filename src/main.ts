import { loadConfig, ConfigError } from './config/config.js';
import { openDatabase } from './storage/db.js';
import { migrate } from './storage/migrations/index.js';
import { moduleDefinitions } from './modules/index.js';
import { createContainer } from './container.js';
import { buildApp } from './app.js';
import { runCli } from './cli/commands.js';

/** Process entry: `switchboard start | migrate | token create | space create`. */
async function main(argv: string[]): Promise<number> {
  const config = loadConfig();
  const [command = 'start', ...rest] = argv;
  if (command === 'start') {
    const container = await createContainer(config);
    const app = await buildApp(container);
    let stopping = false;
    const shutdown = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      app.log.info({ signal }, 'shutting down');
      container.state.closing = true;
      const force = setTimeout(() => process.exit(1), 15_000);
      force.unref();
      try {
        await app.close();
        await container.close();
      } finally {
        process.exit(0);
      }
    };
    process.on('SIGINT', () => void shutdown('SIGINT'));
    process.on('SIGTERM', () => void shutdown('SIGTERM'));
    // Workers first: with WORKER_THREAD their thread takes a moment to load, and a request
    // answered before it runs would wait for it.
    await container.start();
    await app.listen({ port: config.port, host: config.host });
    app.log.info({ database: container.platform.handle.dialect, url: config.publicBaseUrl }, 'switchboard ready');
    return -1; // keep running
  }
  if (command === 'migrate') {
    const handle = openDatabase(config.databaseUrl);
    const applied = await migrate(handle, moduleDefinitions.flatMap((d) => d.migrations ?? []));
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
    await handle.close();
    return 0;
  }
  return runCli(config, command, rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err) => {
    if (err instanceof ConfigError) console.error(`configuration error: ${err.message}`);
    else console.error(err);
    process.exit(1);
  },
);
