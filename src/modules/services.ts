/**
 * Services one module offers to the modules set up after it. Each module augments this interface
 * next to its service (declaration merging) and assigns its entry in `setup`:
 *
 *   declare module '../services.js' { interface Services { profiles: ProfilesService } }
 */
import type { Credentials } from '../auth/credentials.js';
import type { SpaceDirectory } from '../auth/space-directory.js';

export interface Services {
  credentials: Credentials;
  spaces: SpaceDirectory;
}
