/**
 * Webhook target safety (webhooks.md §4.7): https only unless ALLOW_HTTP_WEBHOOKS; no loopback,
 * private, link-local or unique-local targets unless ALLOW_PRIVATE_WEBHOOK_TARGETS. Checked on the
 * URL at create time (IP literals, localhost) and on the resolved addresses inside the socket's
 * `lookup` at send time, so the connection goes to the address that was checked (no DNS
 * rebinding window).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8]] as const) blocked.addSubnet(net, prefix, 'ipv6');

export function isPublicAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 4) return !blocked.check(bare, 'ipv4');
  if (family !== 6) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped) return !blocked.check(mapped[1]!, 'ipv4');
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(bare);
  if (hex) {
    const hi = parseInt(hex[1]!, 16);
    const lo = parseInt(hex[2]!, 16);
    return !blocked.check(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, 'ipv4');
  }
  return !blocked.check(bare, 'ipv6');
}

/** Problem with a webhook URL at configuration time, or undefined. */
export function webhookUrlProblem(raw: string, opts: { allowHttp: boolean; allowPrivate: boolean }): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'Must be an absolute URL';
  }
  if (url.protocol !== 'https:' && !(opts.allowHttp && url.protocol === 'http:')) return opts.allowHttp ? 'Must be an http or https URL' : 'Must be an https URL';
  if (!url.hostname) return 'Must name a host';
  if (url.username || url.password) return 'Must not contain credentials';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!opts.allowPrivate && ((isIP(host) && !isPublicAddress(host)) || /^localhost$|\.localhost$/i.test(host))) {
    return 'Must not target a loopback, private, link-local or unique-local address';
  }
  return undefined;
}

export class BlockedTargetError extends Error {
  readonly code = 'EBLOCKEDTARGET';
}

/** A socket `lookup` that refuses non-public addresses unless `allowPrivate`. */
export function guardedLookup(allowPrivate: boolean): LookupFunction {
  return ((hostname: string, options: { all?: boolean }, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => {
    dnsLookup(hostname, { ...options, all: true }, (err, list) => {
      if (err) return callback(err, '', 0);
      const bad = allowPrivate ? undefined : list.find((a) => !isPublicAddress(a.address));
      if (bad) return callback(new BlockedTargetError(`Refusing ${hostname} (${bad.address}): not a public address`) as NodeJS.ErrnoException, '', 0);
      if (options.all) return callback(null, list);
      const first = list[0];
      if (!first) return callback(Object.assign(new Error(`No address for ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
      callback(null, first.address, first.family);
    });
  }) as LookupFunction;
}
