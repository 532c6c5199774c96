/**
 * Channel configuration (channels.md §1.3): validation through the registered providers, secret
 * settings sealed at rest, ETags and If-Match.
 */
import type { ChannelProvider } from '../../channels/adapter.js';
import { checkTargetUrl } from '../../channels/http-guard.js';
import type { Actor } from '../../auth/actor.js';
import type { ModuleContext } from '../module.js';
import { iso } from '../../lib/clock.js';
import { etagFor, checkIfMatch } from '../../http/etag.js';
import { errors, type ValidationFailure } from '../../http/errors.js';
import { isUniqueViolation } from '../../storage/dialect.js';
import type { ChannelsRepo, StoredConfig } from './channels.repo.js';
import type { ChannelLimits } from './channels.contract.js';
import { MASK, maskedView, mergeSecrets, resolveMasked, splitSecrets } from './channels.settings.js';

export const BUILT_IN_CHANNELS = ['sms', 'mms', 'email', 'nativePush', 'whatsApp', 'fbMessenger', 'twitterDm', 'appMessaging', 'rcs'] as const;
/** Channels that need no provider settings; their provider defaults to `internal`. */
const INTERNAL_CHANNELS = new Set(['nativePush', 'appMessaging']);
const CUSTOM_ID = /^[A-Za-z][A-Za-z0-9_-]{1,49}$/;
const RESERVED = new Set([...BUILT_IN_CHANNELS.map((c) => c.toLowerCase()), 'facebook']);

export const isBuiltIn = (channelId: string): boolean => (BUILT_IN_CHANNELS as readonly string[]).includes(channelId);

/** Why a channel id cannot be configured, or undefined when it can. */
export function channelIdProblem(channelId: string): string | undefined {
  if (isBuiltIn(channelId)) return undefined;
  if (!CUSTOM_ID.test(channelId)) return 'A custom channel id must match ^[A-Za-z][A-Za-z0-9_-]{1,49}$';
  if (RESERVED.has(channelId.toLowerCase())) return `"${channelId}" is reserved`;
  return undefined;
}

/** The configuration as the API shows it (secrets masked). */
export interface ChannelConfigApiView {
  channelId: string;
  enabled: boolean;
  provider: string;
  settings: Record<string, unknown>;
  limits?: ChannelLimits;
  _createdOn: string;
  _createdBy: string;
  _updatedOn: string;
  _updatedBy: string;
}

export interface ConfigInput {
  channelId?: string;
  enabled?: boolean;
  provider?: string;
  settings?: Record<string, unknown>;
  limits?: ChannelLimits;
}

/** The limits as stored: only the ones set, or undefined when none is. */
function limitsOf(input: ChannelLimits | undefined): ChannelLimits | undefined {
  if (!input) return undefined;
  const out: ChannelLimits = {};
  if (input.messagesPerSecond !== undefined) out.messagesPerSecond = input.messagesPerSecond;
  if (input.concurrency !== undefined) out.concurrency = input.concurrency;
  return Object.keys(out).length ? out : undefined;
}

export function createProviderRegistry() {
  const providers = new Map<string, ChannelProvider>();
  const keyOf = (channelId: string, provider: string) => `${isBuiltIn(channelId) ? channelId : 'custom'}\u0000${provider}`;
  return {
    register(p: ChannelProvider): void {
      providers.set(`${p.channel}\u0000${p.provider}`, p);
    },
    /**
     * The provider for a configuration. `internal` (the default of nativePush/appMessaging) means
     * "whatever the server registered for that channel" when exactly one provider is registered.
     */
    find(channelId: string, provider: string): ChannelProvider | undefined {
      const exact = providers.get(keyOf(channelId, provider));
      if (exact || provider !== 'internal' || !INTERNAL_CHANNELS.has(channelId)) return exact;
      const own = [...providers.values()].filter((p) => p.channel === channelId);
      return own.length === 1 ? own[0] : undefined;
    },
    /** Providers that may poll for inbound messages (`ChannelProvider.polls`). */
    pollers(): ChannelProvider[] {
      return [...providers.values()].filter((p) => p.polls);
    },
    namesFor(channelId: string): string[] {
      const ch = isBuiltIn(channelId) ? channelId : 'custom';
      return [...providers.values()].filter((p) => p.channel === ch).map((p) => p.provider).sort();
    },
  };
}
export type ProviderRegistry = ReturnType<typeof createProviderRegistry>;

export function createChannelConfigService(ctx: ModuleContext, deps: { repo: ChannelsRepo; providers: ProviderRegistry; onChange(apiSpaceId: string, channelId: string): Promise<void> }) {
  const { repo, providers } = deps;

  const storedSecrets = (c: StoredConfig | undefined): Record<string, unknown> => (c?.secrets ? JSON.parse(ctx.secrets.open(c.secrets)) : {});
  const view = (c: StoredConfig): ChannelConfigApiView => ({
    channelId: c.channelId, enabled: c.enabled, provider: c.provider,
    settings: maskedView(c.settings, Object.keys(storedSecrets(c))),
    ...(c.limits ? { limits: c.limits } : {}),
    _createdOn: c.createdOn, _createdBy: c.createdBy, _updatedOn: c.updatedOn, _updatedBy: c.updatedBy,
  });
  const withEtag = (c: StoredConfig) => {
    const v = view(c);
    return { view: v, etag: etagFor(c.revision, v) };
  };

  /** Validates the input against the provider; returns the provider name and plaintext settings. */
  function validate(channelId: string, input: ConfigInput, current: StoredConfig | undefined): { provider: string; settings: Record<string, unknown>; secretPaths: readonly string[] } {
    const failures: ValidationFailure[] = [];
    const idProblem = channelIdProblem(channelId);
    if (idProblem) throw errors.invalidField('channelId', idProblem);
    if (input.channelId !== undefined && input.channelId !== channelId) failures.push({ paramName: 'channelId', message: 'Must equal the channel id in the path' });
    const name = input.provider ?? (INTERNAL_CHANNELS.has(channelId) ? 'internal' : undefined);
    const rawSettings = input.settings ?? {};
    if (name === undefined) {
      failures.push({ paramName: 'provider', message: `Required; available: ${providers.namesFor(channelId).join(', ') || 'none registered'}` });
      throw errors.validation(failures);
    }
    const provider = providers.find(channelId, name);
    if (!provider) {
      if (name === 'internal' && INTERNAL_CHANNELS.has(channelId)) {
        if (Object.keys(rawSettings).length) failures.push({ paramName: 'settings', message: `${channelId} takes no provider settings` });
        if (failures.length) throw errors.validation(failures);
        return { provider: name, settings: {}, secretPaths: [] };
      }
      const known = providers.namesFor(channelId);
      failures.push({ paramName: 'provider', message: `Unknown provider "${name}" for channel "${channelId}"; available: ${known.join(', ') || 'none'}` });
      throw errors.validation(failures);
    }
    const kept = current && current.provider === name ? storedSecrets(current) : {};
    const { settings, missing } = resolveMasked(rawSettings, provider.secretSettings, kept);
    for (const path of missing) failures.push({ paramName: `settings.${path}`, message: `"${MASK}" keeps a stored value, but none is stored` });
    if (!missing.length) {
      let problems: Array<{ paramName: string; message: string }>;
      try {
        problems = provider.validateSettings(settings);
      } catch {
        // A provider's validator tripping over an unexpected shape is still the input's fault.
        problems = [{ paramName: '', message: 'The settings do not have the shape this provider expects' }];
      }
      for (const f of problems) failures.push({ paramName: f.paramName ? `settings.${f.paramName}` : 'settings', message: f.message });
    }
    // Custom channels name their target directly: refuse literal private targets up front (the
    // outbound guard checks resolved addresses again at send time).
    if (!isBuiltIn(channelId) && typeof settings.url === 'string' && !failures.some((f) => f.paramName === 'settings.url')) {
      const problem = checkTargetUrl(settings.url.replace(/\{\{[^}]*\}\}/g, 'x'), ctx.config.allowPrivateChannelTargets);
      if (problem) failures.push({ paramName: 'settings.url', message: problem });
    }
    if (failures.length) throw errors.validation(failures);
    return { provider: name, settings, secretPaths: provider.secretSettings };
  }

  return {
    async list(apiSpaceId: string): Promise<ChannelConfigApiView[]> {
      return (await repo.list(apiSpaceId)).map(view);
    },

    async get(apiSpaceId: string, channelId: string) {
      const c = await repo.get(apiSpaceId, channelId);
      if (!c) throw errors.notFound('Channel configuration');
      return withEtag(c);
    },

    async put(actor: Actor, apiSpaceId: string, channelId: string, input: ConfigInput, ifMatch: string | string[] | undefined) {
      const result = await ctx.transaction(async (uow) => {
        const current = await repo.get(apiSpaceId, channelId, uow.tx);
        checkIfMatch(ifMatch, current ? withEtag(current).etag : undefined);
        const { provider, settings, secretPaths } = validate(channelId, input, current);
        const { open, secrets } = splitSecrets(settings, secretPaths);
        const now = iso(ctx.clock.now());
        const next: StoredConfig = {
          apiSpaceId, channelId, enabled: input.enabled ?? true, provider, settings: open,
          secrets: Object.keys(secrets).length ? ctx.secrets.seal(JSON.stringify(secrets)) : null,
          limits: limitsOf(input.limits),
          revision: (current?.revision ?? 0) + 1,
          createdOn: current?.createdOn ?? now, createdBy: current?.createdBy ?? actor.actor, updatedOn: now, updatedBy: actor.actor,
        };
        if (current) {
          if (!(await repo.replace(uow.tx, next, current.revision))) throw errors.conflict('The channel configuration was changed concurrently');
        } else {
          try {
            await repo.insert(uow.tx, next);
          } catch (err) {
            if (isUniqueViolation(err)) throw errors.conflict('The channel configuration was created concurrently');
            throw err;
          }
        }
        return { ...withEtag(next), created: !current };
      });
      await deps.onChange(apiSpaceId, channelId);
      return result;
    },

    async remove(apiSpaceId: string, channelId: string, ifMatch: string | string[] | undefined): Promise<void> {
      await ctx.transaction(async (uow) => {
        const current = await repo.get(apiSpaceId, channelId, uow.tx);
        if (!current) throw errors.notFound('Channel configuration');
        checkIfMatch(ifMatch, withEtag(current).etag);
        if (!(await repo.remove(uow.tx, apiSpaceId, channelId, current.revision))) throw errors.conflict('The channel configuration was changed concurrently');
      });
      await deps.onChange(apiSpaceId, channelId);
    },

    /** Plaintext settings for building an adapter. */
    decrypted(c: StoredConfig): Record<string, unknown> {
      return mergeSecrets(c.settings, storedSecrets(c));
    },
    view,
  };
}

export type ChannelConfigService = ReturnType<typeof createChannelConfigService>;
