import { Type } from '@sinclair/typebox';
import { SpaceIdParam } from '../../http/schemas.js';

/** Apple bundle ids: letters, digits, hyphens and periods. */
const BundleId = Type.String({ minLength: 1, maxLength: 155, pattern: '^[A-Za-z0-9.-]+$', description: 'iOS bundle id' });
const Environment = Type.Union([Type.Literal('development'), Type.Literal('production')], { description: 'APNs environment' });
/** Android application id: at least two dot-separated segments starting with a letter. */
const AndroidPackage = Type.String({ minLength: 3, maxLength: 255, pattern: '^[A-Za-z][A-Za-z0-9_]*(\\.[A-Za-z][A-Za-z0-9_]*)+$', description: 'Android package name' });
const AppleId = (what: string) => Type.String({ pattern: '^[A-Za-z0-9]{10}$', description: `Apple ${what} (10 characters)` });

export const PushParams = Type.Object({ apiSpaceId: SpaceIdParam });
export const ApnsParams = Type.Object({ apiSpaceId: SpaceIdParam, bundleId: BundleId, environment: Environment });
export const FcmParams = Type.Object({ apiSpaceId: SpaceIdParam, package: AndroidPackage });

export const ApnsCertificateBody = Type.Object({
  bundleId: BundleId,
  environment: Environment,
  certificate: Type.String({ minLength: 1, maxLength: 1_000_000, description: 'Base64 PKCS#12 (.p12) holding the certificate and its private key' }),
  password: Type.Optional(Type.String({ maxLength: 1000, description: 'Password of the PKCS#12 file' })),
}, { additionalProperties: true });

export const ApnsTokenBody = Type.Object({
  teamId: AppleId('team id'),
  keyId: AppleId('key id'),
  key: Type.String({ minLength: 1, maxLength: 20_000, description: 'The .p8 signing key as PEM text or its base64' }),
  bundleIds: Type.Optional(Type.Array(BundleId, { maxItems: 500, description: 'Bundles these credentials serve; empty or absent = all' })),
}, { additionalProperties: true });

export const FcmBody = Type.Object({
  serviceAccount: Type.Optional(Type.Union([
    Type.Object({}, { additionalProperties: true }),
    Type.String({ maxLength: 100_000 }),
  ], { description: 'Google service account JSON (object or its text): project_id, client_email, private_key, …' })),
  serverKey: Type.Optional(Type.Unknown({ description: 'Legacy FCM server key: refused' })),
}, { additionalProperties: true });

export const ApnsEntry = Type.Object({
  bundleId: Type.String(),
  environment: Type.String(),
  type: Type.Literal('certificate'),
  subject: Type.String({ description: 'Certificate subject common name' }),
  expiresOn: Type.String({ format: 'date-time' }),
  _updatedOn: Type.String({ format: 'date-time' }),
});

export const ApnsTokenSummary = Type.Object({
  teamId: Type.String(),
  keyId: Type.String(),
  bundleIds: Type.Array(Type.String()),
  _updatedOn: Type.String({ format: 'date-time' }),
});

export const FcmEntry = Type.Object({
  package: Type.String(),
  projectId: Type.String(),
  clientEmail: Type.String(),
  _updatedOn: Type.String({ format: 'date-time' }),
});

export const PushSummary = Type.Object({
  apns: Type.Array(ApnsEntry),
  apnsToken: Type.Union([ApnsTokenSummary, Type.Null()]),
  fcm: Type.Array(FcmEntry),
}, { description: 'Push configuration of an API space (no secrets)' });

/** A PEM file download (certificate or .p8 key). */
export const PemFile = {
  description: 'PEM file (attachment)',
  content: { 'application/x-pem-file': { schema: Type.String() } },
};
