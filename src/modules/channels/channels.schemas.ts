import { Type } from '@sinclair/typebox';
import { AnyObject, SpaceIdParam } from '../../http/schemas.js';

export const ChannelParams = Type.Object({
  apiSpaceId: SpaceIdParam,
  channelId: Type.String({ minLength: 1, maxLength: 100, description: 'Built-in channel id or a custom channel id' }),
});

/**
 * Dispatch limits of a channel (one-api.md §4.3 item 4), kept by the workers: sends are paced to
 * `messagesPerSecond` across every worker process on the database, and at most `concurrency` of
 * them are in flight at once in each worker process.
 */
export const ChannelLimits = Type.Object({
  messagesPerSecond: Type.Optional(Type.Number({ minimum: 0.001, maximum: 100_000, description: 'Most sends per second on this channel, over all worker processes' })),
  concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Most sends in flight at once on this channel, per worker process (default 64)' })),
}, { additionalProperties: false });

export const ChannelConfigBody = Type.Object({
  channelId: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Must equal the path id when given' })),
  enabled: Type.Optional(Type.Boolean({ default: true })),
  provider: Type.Optional(Type.String({ minLength: 1, maxLength: 50, description: 'Provider of the channel (e.g. smpp, http, smtp); custom channels use http' })),
  settings: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'Provider settings; secrets may be sent as ******** to keep the stored value' })),
  limits: Type.Optional(ChannelLimits),
}, { additionalProperties: true });

export const ChannelConfig = Type.Object({
  channelId: Type.String(),
  enabled: Type.Boolean(),
  provider: Type.String(),
  settings: AnyObject,
  limits: Type.Optional(ChannelLimits),
  _createdOn: Type.String({ format: 'date-time' }),
  _createdBy: Type.String(),
  _updatedOn: Type.String({ format: 'date-time' }),
  _updatedBy: Type.String(),
}, { description: 'Channel configuration (secret settings shown as ********)' });

export const TrackedLinkParams = Type.Object({ token: Type.String({ minLength: 1, maxLength: 100 }) });
