import { Type } from '@sinclair/typebox';
import type { App } from '../module.js';
import { errorResponses, SpaceParams } from '../../http/schemas.js';
import type { ChannelRegistry } from '../channels/channels.contract.js';
import { numberList, type PoolNumber } from '../../channels/sms/sms-common.js';
import { DedicatedNumber, ShortcodeKeyword } from './sms.schemas.js';

const tags = ['SMS'];
const auth = { auth: { kind: 'space' as const, permission: 'chan:r' } };

/** Number listings of `cpaas-api.json` (sms.md §7.1), read from the SMS channel settings. */
export function smsRoutes(channels: () => ChannelRegistry | undefined) {
  const numbers = async (apiSpaceId: string): Promise<PoolNumber[]> => {
    const config = await channels()?.config(apiSpaceId, 'sms');
    return config ? numberList(config.settings.numbers) : [];
  };
  return async (app: App) => {
    app.get('/apispaces/:apiSpaceId/sms/dedicatedNumbers', {
      schema: { operationId: 'sms.dedicatedNumbers', tags, summary: 'List dedicated long numbers', params: SpaceParams, response: { 200: Type.Array(DedicatedNumber), ...errorResponses(404) } },
      config: auth,
    }, async (request) => (await numbers(request.space.id)).filter((n) => n.type !== 'shortCode').map((n) => ({ number: n.number, countryIsoCode: n.countryIsoCode ?? '' })));

    app.get('/apispaces/:apiSpaceId/sms/shortcodes', {
      schema: { operationId: 'sms.shortcodes', tags, summary: 'List short codes', params: SpaceParams, response: { 200: Type.Array(ShortcodeKeyword), ...errorResponses(404) } },
      config: auth,
    }, async (request) => (await numbers(request.space.id)).filter((n) => n.type === 'shortCode').map((n) => ({ number: n.number, keyword: '', countryIsoCode: n.countryIsoCode ?? '' })));

    app.get('/apispaces/:apiSpaceId/sms/keywords', {
      schema: { operationId: 'sms.keywords', tags, summary: 'List keywords on shared short codes', params: SpaceParams, response: { 200: Type.Array(ShortcodeKeyword), ...errorResponses(404) } },
      config: auth,
    }, async (request) => (await numbers(request.space.id)).flatMap((n) => (n.keywords ?? []).map((keyword) => ({ number: n.number, keyword, countryIsoCode: n.countryIsoCode ?? '' }))));
  };
}
