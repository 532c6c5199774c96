import WebSocket from 'ws';

export interface FrameClient {
  ws: WebSocket;
  frames: Array<Record<string, any>>;
  /** Resolves with the first frame (already received or future) matching `pred`. */
  next(pred: (f: Record<string, any>) => boolean, timeoutMs?: number): Promise<Record<string, any>>;
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

/** Opens a websocket and records every JSON frame it receives. */
export function openSocket(baseUrl: string, space: string, token: string): Promise<FrameClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/apispaces/${space}/socket?token=${token}`);
    const frames: Array<Record<string, any>> = [];
    const waiters: Array<{ pred: (f: Record<string, any>) => boolean; resolve: (f: Record<string, any>) => void }> = [];
    ws.on('message', (data) => {
      const f = JSON.parse(String(data));
      frames.push(f);
      for (const w of [...waiters]) if (w.pred(f)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(f);
      }
    });
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: String(reason) })));
    ws.on('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { statusCode: res.statusCode })));
    ws.on('error', reject);
    ws.on('open', () => resolve({
      ws, frames, closed,
      next(pred, timeoutMs = 3000) {
        const hit = frames.find(pred);
        if (hit) return Promise.resolve(hit);
        return new Promise((res, rej) => {
          const w = { pred, resolve: (f: Record<string, any>) => { clearTimeout(t); res(f); } };
          const t = setTimeout(() => {
            waiters.splice(waiters.indexOf(w), 1);
            rej(new Error(`timed out waiting for a frame: ${pred.toString()}`));
          }, timeoutMs);
          waiters.push(w);
        });
      },
      close: () => ws.close(),
    }));
  });
}
