import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { Type } from '@sinclair/typebox';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { Credentials } from '../auth/credentials.js';
import type { SpaceDirectory } from '../auth/space-directory.js';
import type { EventBus } from '../events/bus.js';
import { EVENTS_CHANNEL, type EventLog, type StoredEvent } from '../events/log.js';
import type { Clock } from '../lib/clock.js';
import { iso } from '../lib/clock.js';
import type { Ids } from '../lib/ids.js';
import { normaliseSpaceId } from '../lib/ids.js';
import { grants } from '../auth/permissions.js';
import { errors } from '../http/errors.js';
import { errorResponses, SpaceIdParam } from '../http/schemas.js';
import { FRAMES_CHANNEL, SESSION_ENDED_CHANNEL, frameActor, type Frame, type FrameDelivery, type SessionEnded } from './frames.js';

const MAX_CLIENT_FRAME = 64 * 1024;
const PING_INTERVAL_MS = 30_000;

interface Client {
  socket: WebSocket;
  id: string;
  apiSpaceId: string;
  profileId: string;
  sessionId?: string;
  missedPings: number;
}

interface Identity {
  apiSpaceId: string;
  accountId: number;
  profileId: string;
  sessionId?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    socketIdentity?: Identity;
  }
}

export interface Gateway {
  /** Registers `GET /apispaces/:apiSpaceId/socket` in the given scope. */
  routes(app: FastifyInstance): void;
  /** Profiles of this process with at least one open socket (presence). */
  isOnline(apiSpaceId: string, profileId: string): boolean;
  /**
   * Called when a profile's first socket in this process opens (`true`) or its last one closes
   * (`false`); presence (chat.md §5) aggregates these across processes.
   */
  onPresence(fn: (apiSpaceId: string, profileId: string, online: boolean) => void): void;
  socketCount(): number;
  /** Closes every socket (1001) and stops listening to the bus. */
  close(): void;
}

export interface GatewayDeps {
  config: Config;
  bus: EventBus;
  credentials: Credentials;
  spaces: SpaceDirectory;
  log: Logger;
  clock: Clock;
  ids: Ids;
  /** Where a `profile.update` frame's payload is read (the bus announces events without it). */
  events: Pick<EventLog, 'loadPayloads'>;
}

/**
 * The websocket gateway (app-messaging.md §7): authenticates upgrades, indexes sockets by
 * (space, profile) and writes the frames other processes and modules publish on the bus.
 */
export function createGateway(deps: GatewayDeps): Gateway {
  const { config, bus, credentials, spaces, log, clock, ids, events } = deps;
  const bySpace = new Map<string, Map<string, Set<Client>>>();
  let count = 0;
  const presence: Array<(apiSpaceId: string, profileId: string, online: boolean) => void> = [];
  const notify = (apiSpaceId: string, profileId: string, online: boolean) => {
    for (const fn of presence) {
      try {
        fn(apiSpaceId, profileId, online);
      } catch (err) {
        log.warn({ err }, 'presence listener failed');
      }
    }
  };
  const anyOrigin = config.corsAllowedOrigins.includes('*');
  const origins = new Set(config.corsAllowedOrigins);

  function add(c: Client): void {
    let profiles = bySpace.get(c.apiSpaceId);
    if (!profiles) bySpace.set(c.apiSpaceId, (profiles = new Map()));
    let set = profiles.get(c.profileId);
    if (!set) profiles.set(c.profileId, (set = new Set()));
    set.add(c);
    count++;
    if (set.size === 1) notify(c.apiSpaceId, c.profileId, true);
  }

  function remove(c: Client): void {
    const profiles = bySpace.get(c.apiSpaceId);
    const set = profiles?.get(c.profileId);
    if (!set?.delete(c)) return;
    count--;
    if (set.size === 0) {
      profiles!.delete(c.profileId);
      notify(c.apiSpaceId, c.profileId, false);
    }
    if (profiles!.size === 0) bySpace.delete(c.apiSpaceId);
  }

  function deliver(d: FrameDelivery): void {
    const profiles = bySpace.get(d.s);
    if (!profiles) return;
    let text: string | undefined;
    for (const profileId of d.to) {
      if (profileId === d.ex) continue;
      const set = profiles.get(profileId);
      if (!set) continue;
      text ??= JSON.stringify(d.f);
      for (const c of set) if (c.socket.readyState === 1) c.socket.send(text);
    }
  }

  // profile.update frames go to the sockets of that profile only, whichever module changed it. The
  // announcement names the profile (meta.profileId) without the payload: that is read from the log
  // only for a profile with a socket here, one event after another so frames keep their order.
  let reading: Promise<void> = Promise.resolve();
  function onDomainEvent(e: StoredEvent): void {
    if (e.name !== 'profile.update') return;
    const meta = e.meta ?? {};
    const profileId = String(meta.profileId ?? '');
    if (!profileId || !bySpace.get(e.apiSpaceId)?.has(profileId)) return;
    reading = reading.then(async () => {
      if (e.payload === undefined) await events.loadPayloads([e]);
      const etag = (meta.etag ?? meta.eTag) as string | undefined;
      const frame: Frame = {
        eventId: typeof meta.eventId === 'string' ? meta.eventId : ids.uuid(),
        apiSpaceId: e.apiSpaceId,
        accountId: e.accountId,
        name: 'profile.update',
        profileId,
        ...(typeof meta.revision === 'number' ? { revision: meta.revision } : {}),
        ...(etag ? { eTag: etag } : {}),
        payload: e.payload,
        context: { createdBy: frameActor(String(meta.actor ?? meta.by ?? 'system')), createdOn: e.createdOn },
        publishedOn: iso(clock.now()),
      };
      deliver({ s: e.apiSpaceId, to: [profileId], f: frame });
    }).catch((err) => log.warn({ err, eventId: e.id }, 'a profile.update frame could not be read'));
  }

  function sessionEnded(m: SessionEnded): void {
    const profiles = bySpace.get(m.s);
    if (!profiles) return;
    for (const set of profiles.values()) {
      for (const c of set) if (c.sessionId === m.sessionId) c.socket.close(4401, 'session ended');
    }
  }

  const unsubscribe = [
    bus.subscribe(FRAMES_CHANNEL, (m) => deliver(m as FrameDelivery)),
    bus.subscribe(SESSION_ENDED_CHANNEL, (m) => sessionEnded(m as SessionEnded)),
    bus.subscribe(EVENTS_CHANNEL, (m) => onDomainEvent(m as StoredEvent)),
  ];

  // Keep-alive: ping every 30 s; a socket that missed two pings in a row is dropped.
  const pinger = setInterval(() => {
    for (const profiles of bySpace.values()) {
      for (const set of profiles.values()) {
        for (const c of set) {
          if (c.missedPings >= 2) {
            c.socket.terminate();
            continue;
          }
          c.missedPings++;
          c.socket.ping();
        }
      }
    }
  }, PING_INTERVAL_MS);
  pinger.unref();

  async function authenticate(request: FastifyRequest): Promise<void> {
    const origin = request.headers.origin;
    if (origin && !anyOrigin && !origins.has(origin)) throw errors.forbidden('Origin not allowed');
    const params = request.params as { apiSpaceId: string };
    const query = request.query as { token?: string };
    const apiSpaceId = normaliseSpaceId(params.apiSpaceId);
    const actor = query.token ? await credentials.authenticateToken(query.token) : undefined;
    if (!actor) throw errors.unauthorized();
    if (actor.apiSpaceId !== undefined && actor.apiSpaceId !== apiSpaceId) throw errors.forbidden('This token belongs to another API space');
    const space = apiSpaceId ? await spaces.get(apiSpaceId) : undefined;
    if (!space) throw errors.notFound('API space');
    if (space.accountId !== actor.accountId) throw errors.forbidden('This API space belongs to another account');
    let profileId: string;
    if (actor.kind === 'session') profileId = actor.profileId ?? '';
    else if (actor.kind === 'access') {
      if (!grants(actor.permissions ?? new Set(), 'conv:ra') || !actor.profileId) throw errors.forbidden('The token needs conv:ra and a profileId');
      profileId = actor.profileId;
    } else profileId = `PLATFORMUSER\\${actor.username ?? 'admin'}`;
    request.socketIdentity = { apiSpaceId: space.id, accountId: space.accountId, profileId, sessionId: actor.sessionId };
  }

  return {
    routes(app) {
      app.get('/apispaces/:apiSpaceId/socket', {
        websocket: true,
        schema: {
          operationId: 'appmessaging.socket',
          summary: 'Websocket for live App Messaging events',
          params: Type.Object({ apiSpaceId: SpaceIdParam }),
          querystring: Type.Object({ token: Type.Optional(Type.String()) }, { additionalProperties: true }),
          response: errorResponses(404),
        },
        config: { auth: { kind: 'none' } },
        preValidation: authenticate,
      }, (socket: WebSocket, request: FastifyRequest) => {
        const identity = request.socketIdentity!;
        const client: Client = { socket, id: ids.uuid(), apiSpaceId: identity.apiSpaceId, profileId: identity.profileId, sessionId: identity.sessionId, missedPings: 0 };
        add(client);
        socket.on('pong', () => void (client.missedPings = 0));
        socket.on('close', () => remove(client));
        // The SDK sends `echo` frames every minute; they and anything else a client sends are ignored.
        socket.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
          const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : (data as Buffer).byteLength;
          if (size > MAX_CLIENT_FRAME) socket.close(1009, 'frame too big');
        });
        const info: Frame = {
          eventId: ids.uuid(), apiSpaceId: identity.apiSpaceId, accountId: identity.accountId, name: 'socket.info',
          socketId: client.id, payload: { socketId: client.id, profileId: identity.profileId },
          context: { createdBy: 'system', createdOn: iso(clock.now()) }, publishedOn: iso(clock.now()),
        };
        socket.send(JSON.stringify(info));
      });
    },
    isOnline: (apiSpaceId, profileId) => !!bySpace.get(apiSpaceId)?.get(profileId)?.size,
    onPresence: (fn) => void presence.push(fn),
    socketCount: () => count,
    close() {
      clearInterval(pinger);
      for (const off of unsubscribe) off();
      for (const profiles of bySpace.values()) for (const set of profiles.values()) for (const c of set) c.socket.close(1001, 'server shutting down');
      log.debug('websocket gateway closed');
    },
  };
}
