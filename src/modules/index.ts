import type { ModuleDefinition } from './module.js';
import { accountsModule } from './accounts/index.js';
import { spacesModule } from './spaces/index.js';
import { profilesModule } from './profiles/index.js';
import { channelsModule } from './channels/index.js';
import { templatesModule } from './templates/index.js';
import { contentModule } from './content/index.js';
import { messagesModule } from './messages/index.js';
import { smsModule } from './sms/index.js';
import { verifyModule } from './verify/index.js';
import { pnvModule } from './pnv/index.js';
import { webhooksModule } from './webhooks/index.js';
import { appMessagingModule } from './appmessaging/index.js';

/**
 * Every API group, in set-up order: a module may use the services of the ones before it.
 * Adding a module = one import and one entry here.
 */
export const moduleDefinitions: ModuleDefinition[] = [
  accountsModule,
  spacesModule,
  profilesModule,
  channelsModule,
  templatesModule,
  contentModule,
  messagesModule,
  smsModule,
  verifyModule,
  pnvModule,
  appMessagingModule,
  webhooksModule,
];
