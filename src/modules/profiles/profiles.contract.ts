/**
 * What other modules (One API, App Messaging, chat, verify, webhooks) call on profiles. The
 * profiles module implements it and registers it as `services.profiles`; callers code against this
 * interface only. Every method takes the API space id first.
 */
import type { Uow } from '../../storage/uow.js';

/** A stored profile document as the API shows it (custom fields plus `_` audit fields). */
export type ProfileDocument = Record<string, unknown> & { id: string };

export interface ProfileRead {
  profile: ProfileDocument;
  etag: string;
  revision: number;
}

export interface ProfileDevice {
  deviceId: string;
  platform?: string;
  platformVersion?: string;
  sdkType?: string;
  sdkVersion?: string;
  push?: { fcm?: { package: string; registrationId: string }; apns?: { bundleId: string; environment: string; token: string } };
  lastSessionOn?: string;
  _createdOn?: string;
}

/** Lists the active App Messaging sessions (`sessionFull`) of profiles, keyed by profile id. */
export type SessionLister = (apiSpaceId: string, profileIds: readonly string[]) => Promise<Map<string, unknown[]>>;
/** Runs after a profile is deleted; `forget` when it was erased for good (profiles.md §3.5). */
export type ProfileDeletedHook = (apiSpaceId: string, profileId: string, forget: boolean) => Promise<void>;

export interface ProfileDirectory {
  /** A live (not deleted) profile, or undefined. */
  get(apiSpaceId: string, profileId: string): Promise<ProfileRead | undefined>;
  /**
   * For sending: the profile and, when it is a child, its primary (children inherit identifiers
   * they lack from their primary, one-api.md §2.2). Undefined when the profile does not exist.
   */
  resolveForMessaging(apiSpaceId: string, profileId: string): Promise<{ profile: ProfileDocument; primary?: ProfileDocument } | undefined>;
  /**
   * First live profile whose identifier field equals the value (phone digits, e-mail lower-case…);
   * any other top-level string property matches exactly (a custom channel's `userIdProperty`).
   */
  findByIdentifier(apiSpaceId: string, field: 'phoneNumber' | 'email' | 'fbMessengerId' | 'twitterId' | (string & {}), value: string): Promise<ProfileDocument | undefined>;
  /**
   * Creates the profile when missing (emits `profile.create`), optionally inside the caller's
   * transaction. Returns the stored document and whether it was created.
   */
  ensure(apiSpaceId: string, profileId: string, init: Record<string, unknown>, actor: string, uow?: Uow): Promise<{ profile: ProfileDocument; created: boolean }>;
  /** Creates a `_systemProfile: true` profile when missing (access-token identities, agents). */
  ensureSystemProfile(apiSpaceId: string, profileId: string, actor: string): Promise<void>;
  /** Merges fields into a profile (like PATCH) without an ETag check; emits `profile.update`. */
  merge(apiSpaceId: string, profileId: string, fields: Record<string, unknown>, actor: string, uow?: Uow): Promise<ProfileRead>;
  /** Effective opt-in for a channel: the profile's `_optIn[channel]`, else the space default. */
  isOptedIn(apiSpaceId: string, profileId: string, channel: string): Promise<boolean>;
  setOptIn(apiSpaceId: string, profileId: string, channels: Record<string, boolean>, actor: string, uow?: Uow): Promise<void>;
  /** Sets `_lastActivityOn` (not a representation change: no revision, no ETag change). */
  touchActivity(apiSpaceId: string, profileId: string, at?: number): Promise<void>;
  /** Ids of the profile's children (for message history of a primary). */
  childrenOf(apiSpaceId: string, profileId: string): Promise<string[]>;
  /** Devices (App Messaging installations) of a profile. */
  devices(apiSpaceId: string, profileId: string): Promise<ProfileDevice[]>;
  /** Adds or replaces a device by `deviceId` (emits `profile.devicesUpdated`). */
  upsertDevice(apiSpaceId: string, profileId: string, device: ProfileDevice, actor: string, uow?: Uow): Promise<void>;
  /** Called when a device is removed through the profiles API (App Messaging ends its sessions). */
  onDeviceRemoved(fn: (apiSpaceId: string, profileId: string, deviceId: string) => Promise<void>): void;
  /** App Messaging registers how to list profiles' active sessions (`$includeSessions`, `_sessions`). */
  setSessionLister(fn: SessionLister): void;
  /**
   * Called after a profile is deleted or forgotten, once per profile, in the deleting process
   * (App Messaging ends its sessions; on forget the One API redacts its messages, …).
   */
  onDeleted(fn: ProfileDeletedHook): void;
}
