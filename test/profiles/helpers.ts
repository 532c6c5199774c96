import { accountsModule } from '../../src/modules/accounts/index.js';
import { spacesModule } from '../../src/modules/spaces/index.js';
import { profilesModule } from '../../src/modules/profiles/index.js';
import type { StartOptions } from '../helpers/harness.js';

/** Profiles suites run with the modules they depend on only (other groups evolve separately). */
export const profileModules: StartOptions = { modules: [accountsModule, spacesModule, profilesModule] };

export const json = { 'content-type': 'application/json' };
