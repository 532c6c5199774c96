import { Type } from '@sinclair/typebox';
import { SpaceIdParam } from '../../http/schemas.js';

export const SingleQuery = Type.Object({
  phoneNumber: Type.String({ minLength: 1, maxLength: 64, description: 'International, or national with countryCode' }),
  countryCode: Type.Optional(Type.String({ minLength: 2, maxLength: 3, description: 'ISO 3166-1 alpha-2 or alpha-3' })),
});

const Roaming = Type.Object({ networkName: Type.String(), countryCode: Type.String(), countryIdd: Type.String(), countryName: Type.String() });

export const SingleValidation = Type.Object({
  phoneNumber: Type.String(),
  status: Type.Union(['On', 'Off', 'Dead', 'NotProvisioned', 'BadNumber', 'CountryMismatch'].map((s) => Type.Literal(s))),
  countryIdd: Type.String(),
  networkDetails: Type.Optional(Type.Object({
    isPorted: Type.Boolean(), portedFromNetworkName: Type.String(), networkName: Type.String(), networkPrefix: Type.String(), mccmnc: Type.String(),
    roaming: Type.Optional(Roaming),
  })),
  countryCode: Type.Optional(Type.String({ description: 'Extension: the number\'s country (alpha-2)' })),
  numberType: Type.Optional(Type.String({ description: 'Extension: MOBILE, FIXED_LINE, FIXED_LINE_OR_MOBILE, VOIP, …' })),
});

export const JobDetails = Type.Object({
  jobId: Type.Integer(),
  userId: Type.Integer(),
  filename: Type.String(),
  countryIsoCode: Type.String(),
  phoneNumberCount: Type.Integer(),
  invalidCount: Type.Integer(),
  liveInfoCount: Type.Integer(),
  chargeableLiveInfoCount: Type.Integer(),
  status: Type.Union(['Queued', 'Processing', 'Completed', 'Failed', 'Cancelled'].map((s) => Type.Literal(s))),
  percentComplete: Type.Integer(),
  created: Type.String({ format: 'date-time' }),
  updated: Type.String({ format: 'date-time' }),
  minRetention: Type.String({ format: 'date-time' }),
  filePath: Type.String(),
  numberColumnName: Type.String(),
  csvDelimiter: Type.String(),
  hasHeader: Type.Boolean(),
  statusFlag: Type.Union(['NotDefined', 'RequiresAttention', 'Archived'].map((s) => Type.Literal(s))),
  apiSpaceId: Type.String(),
});

export const JobParams = Type.Object({ apiSpaceId: SpaceIdParam, jobId: Type.String({ pattern: '^[0-9]{1,18}$' }) });

/** multipart/form-data with parts csv, separator, country, isHeader, isInternational, phoneField (read by the route). */
export const BulkBody = Type.Unknown({ description: 'multipart/form-data: csv (file), separator, country, isHeader, isInternational, phoneField' });
