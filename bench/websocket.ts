/**
 * Websocket fan-out (app-messaging.md §7), against a bare `ws` broadcast in the same run.
 *
 *   npx tsx --expose-gc bench/websocket.ts          (SQLite; BENCH_DATABASE_URL=postgres://… for PostgreSQL)
 *   BENCH_CLIENTS=1000 BENCH_MESSAGES=50 npx tsx bench/websocket.ts
 *
 * 1. memory: C idle authenticated sockets opened by a child process; the server's heap and RSS
 *    growth per socket, reported as sockets per 100 MB (measured first, on a fresh heap).
 * 2. latency: C session clients in one conversation; for each message, the time from the
 *    `POST …/messages` request to the moment the last client has its `conversationMessage.sent`
 *    frame. Baseline: a bare `ws` server sending a frame of the same size to C clients.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import WebSocket, { WebSocketServer } from 'ws';
import { SignJWT } from 'jose';
import { loadConfig } from '../src/config/config.js';
import { createContainer } from '../src/container.js';
import { buildApp } from '../src/app.js';

const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 1000);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 50);
const ADMIN = 'bench-admin-token-0123456789';
const SECRET = 'bench-shared-secret-0123456789abcdef';

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const fmt = (ms: number) => `${ms.toFixed(2)} ms`;
const gc = () => (globalThis as { gc?: () => void }).gc?.();

/** Opens `n` clients at `url(i)`, calling `onFrame(i, text)` for each frame. */
async function openClients(n: number, url: (i: number) => string, onFrame: (text: string) => void): Promise<WebSocket[]> {
  const out: WebSocket[] = [];
  for (let i = 0; i < n; i += 100) {
    out.push(...await Promise.all(Array.from({ length: Math.min(100, n - i) }, (_, k) => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url(i + k));
      ws.on('message', (d) => onFrame(String(d)));
      ws.on('open', () => resolve(ws));
      ws.on('error', reject);
    }))));
  }
  return out;
}

/** Runs `MESSAGES` rounds: `send(i)` starts one, resolves when all C clients have frame i. */
async function rounds(start: (i: number) => Promise<void>, waitAll: (i: number) => Promise<void>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < MESSAGES + 3; i++) {
    const t0 = performance.now();
    const done = waitAll(i);
    await start(i);
    await done;
    if (i >= 3) times.push(performance.now() - t0); // the first rounds warm up
  }
  return times;
}

function counter() {
  const counts = new Map<string, number>();
  const waiters = new Map<string, () => void>();
  return {
    hit(key: string) {
      const n = (counts.get(key) ?? 0) + 1;
      counts.set(key, n);
      if (n === CLIENTS) waiters.get(key)?.();
    },
    wait(key: string) {
      return new Promise<void>((r) => ((counts.get(key) ?? 0) >= CLIENTS ? r() : waiters.set(key, r)));
    },
  };
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'sb-bench-ws-'));
  const config = loadConfig({
    DATABASE_URL: process.env.BENCH_DATABASE_URL ?? join(dataDir, 'bench.db'), DATA_DIR: dataDir, ADMIN_TOKENS: ADMIN,
    TOKEN_SIGNING_KEYS: 'k1:bench-signing-key-0123456789abcdefghij', INSTALLATION_SECRET: 'bench', LOG_LEVEL: 'silent',
    RATE_LIMIT_SESSION_START_PER_IP: '0',
  });
  const container = await createContainer(config, { log: pino({ level: 'silent' }), schema: process.env.BENCH_DATABASE_URL ? `sb_bench_${Date.now()}` : undefined });
  const app = await buildApp(container);
  await container.start();
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  const wsBase = base.replace('http', 'ws');
  const inject = (method: string, url: string, payload?: unknown, token = ADMIN) =>
    app.inject({ method: method as 'GET', url, payload: payload as never, headers: { authorization: `Bearer ${token}` } });

  const space = (await inject('POST', '/apispaces', { name: 'bench' })).json().id as string;
  await inject('PUT', `/apispaces/${space}/auth`, { issuer: 'bench', audience: 'bench', sharedSecret: SECRET });
  console.log(`# ${CLIENTS} clients, ${MESSAGES} messages, ${config.databaseUrl.startsWith('postgres') ? 'PostgreSQL' : 'SQLite'}`);

  // Sessions through the real challenge flow.
  const tokens: string[] = [];
  for (let i = 0; i < CLIENTS; i += 50) {
    tokens.push(...await Promise.all(Array.from({ length: Math.min(50, CLIENTS - i) }, async (_, k) => {
      const c = (await inject('GET', `/apispaces/${space}/sessions/start`)).json();
      const jwt = await new SignJWT({ sub: `user-${i + k}`, nonce: c.nonce, iss: 'bench', aud: 'bench' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));
      const r = await app.inject({ method: 'POST', url: `/apispaces/${space}/sessions`, payload: { authenticationId: c.authenticationId, authenticationToken: jwt, deviceId: `d${i + k}`, platform: 'javascript' } });
      return r.json().token as string;
    })));
  }
  await inject('POST', `/apispaces/${space}/conversations`, { id: 'bench', name: 'bench' }, tokens[0]);
  for (let i = 1; i < CLIENTS; i += 100) {
    await inject('POST', `/apispaces/${space}/conversations/bench/participants`, Array.from({ length: Math.min(100, CLIENTS - i) }, (_, k) => ({ id: `user-${i + k}` })));
  }

  // 1. Idle authenticated sockets: clients live in a child process, memory measured here.
  gc();
  const before = process.memoryUsage();
  const tokenFile = join(dataDir, 'tokens.json');
  writeFileSync(tokenFile, JSON.stringify(tokens));
  const child = spawn(process.execPath, ['--input-type=module', '-e', `
    import WebSocket from 'ws'; import { readFileSync } from 'node:fs';
    const tokens = JSON.parse(readFileSync(${JSON.stringify(tokenFile)}, 'utf8')); let open = 0; const all = [];
    for (const t of tokens) { const ws = new WebSocket(${JSON.stringify(`${wsBase}/apispaces/${space}/socket?token=`)} + t); all.push(ws);
      ws.on('open', () => { if (++open === tokens.length) console.log('ready'); }); ws.on('error', (e) => { console.error(String(e)); process.exit(1); }); }
    process.stdin.on('data', () => process.exit(0));`], { cwd: process.cwd(), stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d) => String(d).includes('ready') && resolve());
    child.on('exit', (code) => reject(new Error(`client process exited ${code}`)));
  });
  await new Promise((r) => setTimeout(r, 500));
  gc();
  const afterMem = process.memoryUsage();
  const open = container.services.appMessaging.gateway.socketCount();
  const heapPer = (afterMem.heapUsed - before.heapUsed) / open;
  const rssPer = (afterMem.rss - before.rss) / open;
  console.log(`idle authenticated sockets: ${open}`);
  console.log(`  heap per socket ${(heapPer / 1024).toFixed(1)} KiB → ${Math.floor((100 * 1024 * 1024) / Math.max(heapPer, 1))} sockets per 100 MB of heap`);
  // RSS moves in whole pages and arenas; it is only meaningful when it grew.
  if (rssPer > 0) console.log(`  rss  per socket ${(rssPer / 1024).toFixed(1)} KiB → ${Math.floor((100 * 1024 * 1024) / rssPer)} sockets per 100 MB of RSS`);
  else console.log('  rss  did not grow measurably (allocator reuse); use the heap figure');
  child.removeAllListeners('exit');
  child.stdin.write('x');

  // 2a. Baseline: a bare ws server broadcasting the same bytes.
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((r) => wss.once('listening', r));
  const bare = counter();
  const bareClients = await openClients(CLIENTS, () => `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, (text) => bare.hit(String(JSON.parse(text).payload.metadata.i)));
  // A frame of the same shape and size as Switchboard's (ids and texts of equal length).
  const template = { eventId: crypto.randomUUID(), apiSpaceId: space, accountId: 1, name: 'conversationMessage.sent', conversationId: 'bench', conversationEventId: 1, revision: 1,
    payload: { messageId: crypto.randomUUID(), metadata: {}, context: { from: { id: 'user-0' }, conversationId: 'bench', sentBy: 'session:user-0', sentOn: new Date().toISOString(), scope: 'p2p' },
      parts: [{ data: 'message 0', size: 10, type: 'text/plain' }] }, context: { createdBy: 'user-0', createdOn: new Date().toISOString() }, publishedOn: new Date().toISOString() };
  const bareTimes = await rounds(async (i) => {
    await new Promise((r) => setImmediate(r));
    template.payload.metadata = { i };
    const text = JSON.stringify(template);
    for (const c of wss.clients) c.send(text);
  }, (i) => bare.wait(String(i)));
  for (const c of bareClients) c.terminate();
  wss.close();

  // 2b. Switchboard: POST → last client's conversationMessage.sent frame.
  const sb = counter();
  const sbClients = await openClients(CLIENTS, (i) => `${wsBase}/apispaces/${space}/socket?token=${tokens[i]}`, (text) => {
    if (!text.includes('"conversationMessage.sent"')) return;
    sb.hit(String(JSON.parse(text).payload.metadata.i));
  });
  const body = (i: number) => JSON.stringify({ parts: [{ data: `message ${i}`, size: 10, type: 'text/plain' }], metadata: { i } });
  const sbTimes = await rounds(async (i) => {
    const res = await fetch(`${base}/apispaces/${space}/conversations/bench/messages`, {
      method: 'POST', body: body(i), headers: { authorization: `Bearer ${tokens[0]}`, 'content-type': 'application/json' },
    });
    if (res.status !== 200) throw new Error(`send: ${res.status} ${await res.text()}`);
  }, (i) => sb.wait(String(i)));
  for (const c of sbClients) c.terminate();

  console.log(`latency to the last of ${CLIENTS} clients   p50            p99`);
  console.log(`  bare ws broadcast                 ${fmt(pct(bareTimes, 50)).padEnd(14)} ${fmt(pct(bareTimes, 99))}`);
  console.log(`  switchboard POST → frame          ${fmt(pct(sbTimes, 50)).padEnd(14)} ${fmt(pct(sbTimes, 99))}`);
  console.log(`  ratio (p99)                       ${(pct(sbTimes, 99) / pct(bareTimes, 99)).toFixed(2)}x`);

  await app.close();
  await container.close();
  rmSync(dataDir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
