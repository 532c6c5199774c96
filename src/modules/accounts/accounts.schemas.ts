import { Type } from '@sinclair/typebox';
import { ErrorSchema } from '../../http/schemas.js';

export const AuthenticateBody = Type.Object(
  {
    username: Type.Optional(Type.String({ minLength: 1, maxLength: 320, description: 'User name (e-mail style)' })),
    emailAddress: Type.Optional(Type.String({ minLength: 1, maxLength: 320, description: 'Synonym of username' })),
    password: Type.String({ minLength: 1, maxLength: 1024 }),
  },
  { additionalProperties: true },
);

export const AuthenticateResponse = Type.Object({
  token: Type.String(),
  expiresOn: Type.String({ format: 'date-time' }),
  accountId: Type.Integer(),
});

export const User = Type.Object({
  username: Type.String(),
  name: Type.String(),
  role: Type.Union([Type.Literal('admin'), Type.Literal('agent')]),
  _createdOn: Type.String({ format: 'date-time' }),
  _updatedOn: Type.String({ format: 'date-time' }),
});

export const CreateUserBody = Type.Object({
  username: Type.String({ minLength: 3, maxLength: 320, pattern: '^[^\\s/]+$' }),
  password: Type.String({ minLength: 12, maxLength: 1024 }),
  name: Type.String({ minLength: 1, maxLength: 200 }),
  role: Type.Union([Type.Literal('admin'), Type.Literal('agent')]),
});

export const UpdateUserBody = Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  role: Type.Optional(Type.Union([Type.Literal('admin'), Type.Literal('agent')])),
  password: Type.Optional(Type.String({ minLength: 12, maxLength: 1024 })),
});

export const AccountParams = Type.Object({ accountId: Type.String({ pattern: '^[1-9][0-9]{0,15}$' }) });
export const UserParams = Type.Object({ accountId: Type.String({ pattern: '^[1-9][0-9]{0,15}$' }), username: Type.String({ minLength: 1, maxLength: 320 }) });

export { ErrorSchema };
