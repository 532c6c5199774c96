import { checkTargetUrl, createGuardedAgents, guardedRequest, OutboundError } from '../../channels/http-guard.js';

export interface SendResult {
  status: number | null;
  error: string | null;
}

/**
 * Problem with a webhook URL at configuration time, or undefined (webhooks.md §4.7): https only
 * unless `allowHttp`; IP literals and `localhost` must be public unless `allowPrivate`.
 */
export function webhookUrlProblem(raw: string, opts: { allowHttp: boolean; allowPrivate: boolean }): string | undefined {
  return checkTargetUrl(raw, opts.allowPrivate, { httpsOnly: !opts.allowHttp });
}

/**
 * POSTs webhook requests through the shared SSRF guard (`src/channels/http-guard.ts`) with
 * keep-alive agents. Never follows redirects; the whole exchange (connect, headers, body) must
 * finish within `timeoutMs`. Targets are checked on the address actually connected to, IP
 * literals before connecting (webhooks.md §4.7); a refused target is a failed attempt.
 */
export function createSender(opts: { allowPrivate: boolean; allowHttp: boolean }) {
  const agents = createGuardedAgents({ maxSockets: 64 });

  async function send(url: string, headers: Record<string, string>, body: Buffer, timeoutMs: number, signal: AbortSignal): Promise<SendResult> {
    try {
      const res = await guardedRequest({
        url, method: 'POST', headers, body, timeoutMs, signal, agents,
        allowPrivate: opts.allowPrivate, httpsOnly: !opts.allowHttp, maxResponseBytes: 0,
      });
      return { status: res.status, error: null };
    } catch (err) {
      if (!(err instanceof OutboundError)) return { status: null, error: String(err).slice(0, 500) };
      switch (err.kind) {
        case 'blocked':
        case 'invalid':
          return { status: null, error: `refused: ${err.message}`.slice(0, 500) };
        case 'timeout':
          return { status: null, error: `timeout after ${timeoutMs} ms` };
        default:
          return { status: null, error: err.message.slice(0, 500) };
      }
    }
  }

  return {
    send,
    close() {
      agents.destroy();
    },
  };
}
