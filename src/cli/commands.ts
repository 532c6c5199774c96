import pino from 'pino';
import type { Config } from '../config/config.js';
import { createContainer } from '../container.js';
import { normaliseSpaceId } from '../lib/ids.js';

const USAGE = `usage: switchboard <command>
  start                                   run the server (default)
  migrate                                 apply database migrations
  space create <name> [--account N]       create an API space; prints it as JSON
  token create <apiSpaceId> <name> [--profile ID] [--permissions p1,p2 | --template ID] [--account N]
                                          mint an access token; prints it as JSON`;

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Administrative commands run against the configured database. */
export async function runCli(config: Config, command: string, args: string[]): Promise<number> {
  const sub = args[0];
  if (!((command === 'space' || command === 'token') && sub === 'create')) {
    console.error(USAGE);
    return command === 'help' || command === '--help' ? 0 : 2;
  }
  // stdout carries only the JSON result (scripts parse it); logs go to stderr.
  const log = pino({ level: config.logLevel }, pino.destination({ dest: 2, sync: true }));
  const container = await createContainer({ ...config, workersEnabled: false }, { log });
  try {
    const accountId = Number(flag(args, '--account') ?? config.bootstrapAccountId);
    if (!Number.isInteger(accountId) || accountId < 1) throw new Error('--account must be a positive integer');
    const actor = { kind: 'admin' as const, accountId, role: 'admin' as const, actor: 'interactive:admin' };
    if (command === 'space') {
      const name = args[1];
      if (!name) throw new Error('space create needs a name');
      const { space } = await container.services.apiSpaces.create(actor, name);
      console.log(JSON.stringify(space, null, 2));
    } else {
      const [, apiSpaceId, name] = args;
      if (!apiSpaceId || !name) throw new Error('token create needs <apiSpaceId> <name>');
      const spaceId = normaliseSpaceId(apiSpaceId);
      const space = spaceId ? await container.spaces.get(spaceId) : undefined;
      if (!space || space.accountId !== accountId) throw new Error(`API space ${apiSpaceId} not found in account ${accountId}`);
      const permissions = flag(args, '--permissions')?.split(',');
      const template = flag(args, '--template') ?? (permissions ? undefined : 'oneapi-all-branch');
      const created = await container.services.accessTokens.create(actor, space.id, {
        name, profileId: flag(args, '--profile') ?? name, permissions, template,
      });
      console.log(JSON.stringify(created, null, 2));
    }
    return 0;
  } catch (err) {
    const failures = (err as { validationFailures?: Array<{ paramName: string; message: string }> }).validationFailures;
    console.error(err instanceof Error ? err.message : err);
    for (const f of failures ?? []) console.error(`  ${f.paramName}: ${f.message}`);
    return 1;
  } finally {
    await container.close();
  }
}
