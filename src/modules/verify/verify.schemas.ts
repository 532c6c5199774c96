import { Type } from '@sinclair/typebox';

export const VerifyCode = Type.Object({
  requestId: Type.String(),
  phoneNumber: Type.String({ description: 'International form, digits only' }),
  status: Type.Union([Type.Literal('CodeVerified'), Type.Literal('CodeNotVerified'), Type.Literal('CodeLocked'), Type.Literal('CodeExpired')]),
  numberStatus: Type.Union([Type.Literal('Valid'), Type.Literal('Invalid'), Type.Literal('Unknown')]),
  created: Type.String({ format: 'date-time' }),
  validUntil: Type.Optional(Type.String({ format: 'date-time' })),
  verified: Type.Optional(Type.String({ format: 'date-time' })),
}, { description: 'A verification request' });

export const VerifyErrors = Type.Array(Type.Object({ code: Type.String(), description: Type.String() }), { description: 'Verify error body (verify.md §5)' });

/** Validated by the service so that every problem answers with Verify's own error body. */
export const CreateBody = Type.Unknown({ description: '{to, from?, countryIsoCode?, body?, validUntil?}' });
export const ValidateBody = Type.Unknown({ description: '{code}' });
export const RequestParams = Type.Object({ requestId: Type.String({ maxLength: 100 }) });
