import type { Config } from '../config/config.js';
import { createContainer } from '../container.js';

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
  const container = await createContainer({ ...config, workersEnabled: false }, { log: undefined });
  try {
    const accountId = Number(flag(args, '--account') ?? config.bootstrapAccountId);
    const actor = { kind: 'admin' as const, accountId, role: 'admin' as const, actor: 'interactive:admin' };
    if (command === 'space') {
      const name = args[1];
      if (!name) throw new Error('space create needs a name');
      const { space } = await container.services.apiSpaces.create(actor, name);
      console.log(JSON.stringify(space, null, 2));
    } else {
      const [, apiSpaceId, name] = args;
      if (!apiSpaceId || !name) throw new Error('token create needs <apiSpaceId> <name>');
      const permissions = flag(args, '--permissions')?.split(',');
      const template = flag(args, '--template') ?? (permissions ? undefined : 'oneapi-all-branch');
      const created = await container.services.accessTokens.create(actor, apiSpaceId.toLowerCase(), {
        name, profileId: flag(args, '--profile') ?? name, permissions, template,
      });
      console.log(JSON.stringify(created, null, 2));
    }
    return 0;
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    return 1;
  } finally {
    await container.close();
  }
}
