import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { SecretBox } from '../../lib/secrets.js';

/** What a Messenger opt-in string carries (spaces-and-billing.md §11). */
export interface FacebookState {
  apiSpaceId: string;
  profileId: string;
  data?: string;
  /** Epoch seconds. */
  iat: number;
}

/** Facebook's limit for a `ref`/`data-ref` value. */
export const MAX_STATE_LENGTH = 250;
const VALID_DAYS = 90;

/**
 * The opaque `data-ref` of the "Send to Messenger" plugin: 24 hex characters of nonce, then the
 * base64 AES-256-GCM encryption (ciphertext and tag) of the state, under a key derived from the
 * installation secret. Only characters Facebook allows in a `ref` (A–Z a–z 0–9 + / =).
 */
export function createFacebookStates(secrets: SecretBox, now: () => number) {
  const key = secrets.deriveKey('facebook-state-v1');
  return {
    /** The string, or undefined when it would exceed Facebook's 250 characters. */
    encode(state: Omit<FacebookState, 'iat'>): string | undefined {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      // Short keys: the whole string must fit in 250 characters.
      const plain = JSON.stringify({ s: state.apiSpaceId, p: state.profileId, ...(state.data !== undefined ? { d: state.data } : {}), t: Math.floor(now() / 1000) });
      const sealed = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      const text = `${iv.toString('hex')}${sealed.toString('base64')}`;
      return text.length <= MAX_STATE_LENGTH ? text : undefined;
    },
    /** The state of a string made here and not older than 90 days; undefined otherwise. */
    decode(text: string): FacebookState | undefined {
      const m = /^([0-9a-f]{24})([A-Za-z0-9+/]+={0,2})$/.exec(text);
      if (!m) return undefined;
      try {
        const raw = Buffer.from(m[2]!, 'base64');
        if (raw.length < 17) return undefined;
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(m[1]!, 'hex'));
        decipher.setAuthTag(raw.subarray(raw.length - 16));
        const o = JSON.parse(Buffer.concat([decipher.update(raw.subarray(0, raw.length - 16)), decipher.final()]).toString('utf8')) as { s: string; p: string; d?: string; t: number };
        if (now() / 1000 - o.t > VALID_DAYS * 86_400) return undefined;
        return { apiSpaceId: o.s, profileId: o.p, ...(o.d !== undefined ? { data: o.d } : {}), iat: o.t };
      } catch {
        return undefined;
      }
    },
  };
}
export type FacebookStates = ReturnType<typeof createFacebookStates>;
