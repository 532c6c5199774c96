/**
 * Google service account keys (the JSON file the Google Cloud console hands out), as FCM push
 * configuration and the `rcs` channel's RBM settings take them: the same checks and messages in
 * both places.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';

/** The fields of a service account JSON key that the clients use (the other fields are kept). */
export interface GoogleServiceAccount {
  client_email: string;
  private_key: string;
  project_id?: string;
  private_key_id?: string;
  /** The OAuth token endpoint; Google's when absent. */
  token_uri?: string;
  [field: string]: unknown;
}

type Failure = { paramName: string; message: string };
export type ParsedServiceAccount = { account: GoogleServiceAccount; failures: [] } | { account?: undefined; failures: Failure[] };

const OBJECT_EXPECTED = 'Must be the service account JSON object';

function rsaKey(pem: string): boolean {
  let key: KeyObject | undefined;
  try {
    key = createPrivateKey(pem);
  } catch {
    return false;
  }
  return key.asymmetricKeyType === 'rsa';
}

/**
 * Reads a service account given as its JSON object or as JSON text. `paramName` names it in the
 * failures (`serviceAccount.client_email`…); `projectId` requires a project id (FCM sends to a
 * project). The input is not changed.
 */
export function parseServiceAccount(input: unknown, options: { paramName: string; projectId: boolean }): ParsedServiceAccount {
  const at = (field?: string) => (field ? `${options.paramName}.${field}` : options.paramName);
  let sa = input;
  if (typeof sa === 'string') {
    try {
      sa = JSON.parse(sa);
    } catch {
      return { failures: [{ paramName: at(), message: OBJECT_EXPECTED }] };
    }
  }
  if (!sa || typeof sa !== 'object' || Array.isArray(sa)) return { failures: [{ paramName: at(), message: OBJECT_EXPECTED }] };
  const o = { ...(sa as Record<string, unknown>) };
  const failures: Failure[] = [];
  if (o.type !== undefined && o.type !== 'service_account') failures.push({ paramName: at('type'), message: 'Must be "service_account"' });
  if ((options.projectId || o.project_id !== undefined) && (typeof o.project_id !== 'string' || !/^[a-z][a-z0-9-]{3,62}$/.test(o.project_id))) {
    failures.push({ paramName: at('project_id'), message: 'Must be a Google Cloud project id' });
  }
  if (typeof o.client_email !== 'string' || !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(o.client_email)) failures.push({ paramName: at('client_email'), message: 'Must be the service account e-mail address' });
  // Keys pasted from a JSON file sometimes keep their "\n" escapes as text.
  if (typeof o.private_key === 'string') o.private_key = o.private_key.replace(/\\n/g, '\n');
  if (typeof o.private_key !== 'string' || !rsaKey(o.private_key)) failures.push({ paramName: at('private_key'), message: 'Must be the RSA private key in PEM form' });
  if (o.token_uri !== undefined && (typeof o.token_uri !== 'string' || !/^https?:\/\/\S+$/i.test(o.token_uri))) failures.push({ paramName: at('token_uri'), message: 'Must be an http(s) URL' });
  return failures.length ? { failures } : { account: o as GoogleServiceAccount, failures: [] };
}
