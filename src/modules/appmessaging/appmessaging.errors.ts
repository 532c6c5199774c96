import { AppError, errors } from '../../http/errors.js';

/** App Messaging error codes (conventions.md §4.2, app-messaging.md §2–§5). */
export const amErrors = {
  invalidAuthentication: () => new AppError(403, 'InvalidAuthentication', 'The authentication challenge is unknown, expired or already used'),
  authNotConfigured: () => new AppError(403, 'AuthNotConfigured', 'The API space has no auth configuration'),
  invalidJwt: () => new AppError(403, 'InvalidJwt', 'Invalid JWT'),
  anonymousDisabled: () => new AppError(403, 'AnonymousSessionsDisabled', 'Anonymous sessions are disabled for this API space'),
  profileDeleted: () => new AppError(403, 'ProfileDeleted', 'The profile has been deleted'),
  notAParticipant: (conversationId: string) => new AppError(403, 'NotAParticipant', `The caller is not a participant of conversation ${conversationId}`),
  roleNotAllowed: (what: string) => new AppError(403, 'RoleNotAllowed', `The caller's role does not allow ${what}`),
  conversationNotFound: () => errors.notFound('Conversation'),
  sessionNotFound: () => errors.notFound('Session'),
  alreadyExists: (id: string) => errors.conflict(`Conversation ${id} already exists`, 'AlreadyExists'),
};
