import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const scryptAsync = promisify(scrypt) as (pw: string, salt: Buffer, len: number, opts: object) => Promise<Buffer>;

/**
 * Encrypts secrets stored in the database (channel credentials, push keys, shared secrets) with
 * AES-256-GCM under a key derived from the installation secret.
 */
export interface SecretBox {
  seal(plaintext: string): string;
  open(sealed: string): string;
  /** A 32-byte key for another purpose, derived from the same installation secret. */
  deriveKey(purpose: string): Buffer;
}

export function createSecretBox(installationSecret: string): SecretBox {
  const key = Buffer.from(hkdfSync('sha256', installationSecret, 'switchboard', 'secrets-at-rest-v1', 32));
  return {
    seal(plaintext) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return `v1:${Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64')}`;
    },
    open(sealed) {
      if (!sealed.startsWith('v1:')) throw new Error('unknown secret format');
      const raw = Buffer.from(sealed.slice(3), 'base64');
      const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    },
    deriveKey(purpose) {
      return Buffer.from(hkdfSync('sha256', installationSecret, 'switchboard', purpose, 32));
    },
  };
}

/** `********` followed by the last 4 characters (spaces-and-billing.md §3). */
export function maskSecret(secret: string): string {
  return '********' + secret.slice(-4);
}

const SCRYPT = { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scryptAsync(password, salt, 32, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const actual = await scryptAsync(password, Buffer.from(salt, 'base64'), expected.length, {
    N: Number(n), r: Number(r), p: Number(p), maxmem: SCRYPT.maxmem,
  });
  return timingSafeEqual(expected, actual);
}

/**
 * Whether a candidate equals one of `secrets`, compared in constant time. The secrets are encoded
 * once, and a candidate only when its length matches one (an access token checked against the
 * admin tokens on every request would otherwise allocate two buffers per admin token).
 */
export function secretMatcher(secrets: readonly string[]): (candidate: string) => boolean {
  const known = secrets.map((s) => Buffer.from(s));
  return (candidate) => {
    const length = Buffer.byteLength(candidate);
    let match = false;
    for (const k of known) {
      if (k.length === length && timingSafeEqual(k, Buffer.from(candidate))) match = true;
    }
    return match;
  };
}
