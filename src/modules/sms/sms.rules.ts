/**
 * The inbound SMS keyword seam (sms.md §7, spaces-and-billing.md §9): until message rules are
 * configured per space, the default opt-out (`STOP`, …) and opt-in (`START`, …) keywords set the
 * sender profile's SMS opt-in. A rules module can replace `decide` through `services.smsKeywords`.
 */
import type { Uow } from '../../storage/uow.js';
import type { ProfileDirectory } from '../profiles/profiles.contract.js';

export const OPT_OUT_KEYWORDS = ['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT'];
export const OPT_IN_KEYWORDS = ['START', 'UNSTOP', 'SUBSCRIBE'];

export interface SmsKeywordRules {
  /** true → opt in, false → opt out, undefined → no keyword. */
  decide(apiSpaceId: string, body: string): boolean | undefined;
  /** Replaces the decision (a message-rules module installs its own). */
  replace(decide: SmsKeywordRules['decide']): void;
}

export function defaultDecision(_apiSpaceId: string, body: string): boolean | undefined {
  const word = body.trim().split(/\s+/)[0]?.toUpperCase().replace(/[.!]+$/, '') ?? '';
  if (OPT_OUT_KEYWORDS.includes(word)) return false;
  if (OPT_IN_KEYWORDS.includes(word)) return true;
  return undefined;
}

export function createSmsKeywordRules(): SmsKeywordRules {
  let decide = defaultDecision;
  return {
    decide: (s, b) => decide(s, b),
    replace(next) {
      decide = next;
    },
  };
}

/** Hook for `services.messages.onInbound`: runs inside the inbound message's transaction. */
export function smsOptOutHook(rules: SmsKeywordRules, profiles: () => ProfileDirectory | undefined) {
  return async (apiSpaceId: string, inbound: Record<string, any>, uow: Uow): Promise<void> => {
    if (inbound.channel !== 'sms' || typeof inbound.body !== 'string') return;
    const profileId = inbound.from?.profileId;
    const dir = profiles();
    if (!profileId || !dir) return;
    const optIn = rules.decide(apiSpaceId, inbound.body);
    if (optIn === undefined) return;
    await dir.setOptIn(apiSpaceId, profileId, { sms: optIn }, 'system', uow);
  };
}
