import type { OptinReport } from '../../channels/adapter.js';
import { FacebookEvents } from '../../events/catalogue.js';
import { AppError } from '../../http/errors.js';
import type { ModuleContext } from '../module.js';
import type { FacebookStates } from './facebook-state.js';

/**
 * A Messenger opt-in carrying a `/channels/facebook/state` string (channels.md §7, webhooks.md
 * §5.3): the sender's Messenger id is stored as `fbMessengerId` on the profile the string names
 * (made if missing), with the string's `data` merged in when it is a JSON object, and
 * `facebook.optin` is emitted, in one transaction. A string this installation did not make, made
 * for another space, or older than 90 days is ignored.
 */
export function facebookOptins(ctx: ModuleContext, states: FacebookStates) {
  return async (apiSpaceId: string, channelId: string, report: OptinReport): Promise<void> => {
    const state = states.decode(report.ref);
    const profiles = ctx.services.profiles;
    if (!state || state.apiSpaceId !== apiSpaceId || !profiles) {
      ctx.log.info({ apiSpaceId, channelId, fbMessengerId: report.fbMessengerId }, 'Messenger opt-in with an unknown, foreign or expired opt-in string: ignored');
      return;
    }
    const space = await ctx.services.spaces.get(apiSpaceId);
    if (!space) return;
    let extra: Record<string, unknown> = {};
    if (state.data !== undefined) {
      try {
        const parsed: unknown = JSON.parse(state.data);
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
          extra = Object.fromEntries(Object.entries(parsed).filter(([k]) => !k.startsWith('_') && k !== 'id' && k !== 'fbMessengerId'));
        }
      } catch {
        // Plain text: reported as stateData only.
      }
    }
    const apply = (fields: Record<string, unknown>) => ctx.transaction(async (uow) => {
      await profiles.merge(apiSpaceId, state.profileId, { ...fields, fbMessengerId: report.fbMessengerId }, 'system', uow);
      await ctx.events.append(uow, {
        apiSpaceId, accountId: space.accountId, name: FacebookEvents.optin,
        payload: { fbMessengerId: report.fbMessengerId, profileId: state.profileId, stateData: state.data ?? null, ref: report.ref, rawData: report.raw, pageId: report.pageId },
        meta: { profileId: state.profileId },
      });
    });
    try {
      await apply(extra);
    } catch (err) {
      // Extra data the profile refuses (a reserved or badly typed field) does not lose the id.
      if (!(err instanceof AppError && err.status === 400) || !Object.keys(extra).length) throw err;
      ctx.log.info({ apiSpaceId, profileId: state.profileId }, 'Messenger opt-in data refused by the profile: the Messenger id is stored without it');
      await apply({});
    }
  };
}
