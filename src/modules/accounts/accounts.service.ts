import type { Platform } from '../../platform.js';
import { hashPassword, verifyPassword } from '../../lib/secrets.js';
import { iso } from '../../lib/clock.js';
import { errors } from '../../http/errors.js';
import { isUniqueViolation } from '../../storage/dialect.js';
import type { Credentials } from '../../auth/credentials.js';
import type { UserRow } from '../../storage/schema.js';

export const USER_TOKEN_TTL_SECONDS = 2 * 60 * 60;
const LOCK_FAILURES = 5;
const LOCK_WINDOW_MS = 15 * 60 * 1000;

export interface UserView {
  username: string;
  name: string;
  role: 'admin' | 'agent';
  _createdOn: string;
  _updatedOn: string;
}

const view = (u: UserRow): UserView => ({ username: u.username, name: u.name, role: u.role, _createdOn: u.created_on, _updatedOn: u.updated_on });

export type AccountsService = ReturnType<typeof createAccountsService>;

/** Accounts, users and `POST /authenticate` (spaces-and-billing.md §1). */
export function createAccountsService(p: Platform, credentials: Credentials) {
  const { db, clock, config } = p;
  const failures = new Map<string, number[]>();

  async function ensureAccount(id: number): Promise<void> {
    await db.insertInto('accounts').values({ id, name: `Account ${id}`, created_on: iso(clock.now()) }).onConflict((oc) => oc.doNothing()).execute();
  }

  return {
    /** First start: bootstrap account and optional admin user (conventions.md §3.1). */
    async bootstrap(): Promise<void> {
      await ensureAccount(config.bootstrapAccountId);
      if (config.bootstrapAdminUsername && config.bootstrapAdminPassword) {
        const exists = await db.selectFrom('users').select('username').where('username', '=', config.bootstrapAdminUsername).executeTakeFirst();
        if (!exists) {
          await this.createUser(config.bootstrapAccountId, { username: config.bootstrapAdminUsername, password: config.bootstrapAdminPassword, name: 'Administrator', role: 'admin' }, true);
        }
      }
    },

    async authenticate(username: string, password: string): Promise<{ token: string; expiresOn: string; accountId: number }> {
      const now = clock.now();
      const recent = (failures.get(username) ?? []).filter((t) => t > now - LOCK_WINDOW_MS);
      if (recent.length >= LOCK_FAILURES) throw errors.tooManyRequests((recent[0]! + LOCK_WINDOW_MS - now) / 1000);
      const user = await db.selectFrom('users').selectAll().where('username', '=', username).where('deleted', '=', 0).executeTakeFirst();
      if (!user || !(await verifyPassword(password, user.password_hash))) {
        failures.set(username, [...recent, now]);
        throw errors.unauthorized('Wrong user name or password');
      }
      failures.delete(username);
      const iat = Math.floor(now / 1000);
      const exp = iat + USER_TOKEN_TTL_SECONDS;
      const token = credentials.issue({
        tokenType: 'user', iss: `${config.publicBaseUrl}/authenticate`, aud: config.publicBaseUrl, sub: user.username,
        accountId: user.account_id, role: user.role, gen: user.token_generation, iat, exp, jti: p.ids.uuid(),
      });
      return { token, expiresOn: iso(exp * 1000), accountId: user.account_id };
    },

    async listUsers(accountId: number): Promise<UserView[]> {
      const rows = await db.selectFrom('users').selectAll().where('account_id', '=', accountId).where('deleted', '=', 0).orderBy('username').execute();
      return rows.map(view);
    },

    async createUser(accountId: number, input: { username: string; password: string; name: string; role: 'admin' | 'agent' }, skipAccountCheck = false): Promise<UserView> {
      if (!skipAccountCheck) await ensureAccount(accountId);
      const now = iso(clock.now());
      const row: UserRow = {
        account_id: accountId, username: input.username, name: input.name, role: input.role,
        password_hash: await hashPassword(input.password), token_generation: 0, deleted: 0, created_on: now, updated_on: now,
      };
      try {
        await db.insertInto('users').values(row).execute();
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        // A deleted user's name may be taken again.
        const res = await db.updateTable('users').set({ ...row, token_generation: clock.now() % 1_000_000_000 }).where('username', '=', input.username).where('deleted', '=', 1).executeTakeFirst();
        if (Number(res.numUpdatedRows) !== 1) throw errors.conflict(`User ${input.username} already exists`, 'AlreadyExists');
      }
      return view(row);
    },

    async updateUser(accountId: number, username: string, input: { name?: string; role?: 'admin' | 'agent'; password?: string }): Promise<UserView> {
      const user = await db.selectFrom('users').selectAll().where('username', '=', username).where('account_id', '=', accountId).where('deleted', '=', 0).executeTakeFirst();
      if (!user) throw errors.notFound('User');
      if (input.role === 'agent' && user.role === 'admin') await assertNotLastAdmin(accountId, username);
      const patch: Partial<UserRow> = { updated_on: iso(clock.now()) };
      if (input.name !== undefined) patch.name = input.name;
      if (input.role !== undefined) patch.role = input.role;
      if (input.password !== undefined) {
        patch.password_hash = await hashPassword(input.password);
        patch.token_generation = user.token_generation + 1;
      }
      await db.updateTable('users').set(patch).where('username', '=', username).execute();
      return view({ ...user, ...patch });
    },

    async deleteUser(accountId: number, username: string): Promise<void> {
      const user = await db.selectFrom('users').selectAll().where('username', '=', username).where('account_id', '=', accountId).where('deleted', '=', 0).executeTakeFirst();
      if (!user) throw errors.notFound('User');
      if (user.role === 'admin') await assertNotLastAdmin(accountId, username);
      await db.updateTable('users').set({ deleted: 1, token_generation: user.token_generation + 1, updated_on: iso(clock.now()) }).where('username', '=', username).execute();
    },
  };

  async function assertNotLastAdmin(accountId: number, username: string): Promise<void> {
    const others = await db.selectFrom('users').select('username').where('account_id', '=', accountId).where('role', '=', 'admin').where('deleted', '=', 0).where('username', '!=', username).executeTakeFirst();
    if (!others) throw errors.conflict('An account must keep at least one admin', 'InvalidState');
  }
}
