// Users and their credentials. Passwords are kept as RabbitMQ keeps them (rabbit_password_hashing
// _sha256): base64(salt ‖ sha256(salt ‖ password)) with a 4-byte random salt, so definitions can
// move between the two brokers with working passwords. Checks are constant-time. A user without a
// password hash (RabbitMQ's "passwordless" user) can never log in with a password.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** The only hashing algorithm Warren reads and writes; RabbitMQ's default since 3.6. */
export const HASHING_ALGORITHM = 'rabbit_password_hashing_sha256';

/** Tags RabbitMQ gives meaning to; any other tag is kept and shown, as RabbitMQ does. */
export const KNOWN_TAGS = ['administrator', 'monitoring', 'policymaker', 'management', 'impersonator'] as const;

export interface User {
  readonly name: string;
  /** base64(salt ‖ sha256(salt ‖ password)); '' = no password (cannot log in with one) */
  passwordHash: string;
  tags: string[];
}

export function hashPassword(password: string, salt: Buffer = randomBytes(4)): string {
  const digest = createHash('sha256').update(salt).update(password, 'utf8').digest();
  return Buffer.concat([salt, digest]).toString('base64');
}

export function passwordMatches(password: string, passwordHash: string): boolean {
  const stored = Buffer.from(passwordHash, 'base64');
  if (stored.length !== 36) return false;
  const candidate = Buffer.from(hashPassword(password, stored.subarray(0, 4)), 'base64');
  return timingSafeEqual(stored, candidate);
}

/** Whether a hash read from definitions has the shape of a salted SHA-256 hash ('' allowed). */
export function isValidPasswordHash(passwordHash: string): boolean {
  if (passwordHash === '') return true;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(passwordHash)) return false;
  return Buffer.from(passwordHash, 'base64').length === 36;
}

/** RabbitMQ accepts tags as a comma-separated string or a list; blanks are dropped. */
export function parseTags(tags: string | readonly string[] | undefined): string[] {
  if (tags === undefined) return [];
  const list = typeof tags === 'string' ? tags.split(',') : [...tags];
  return list.map((t) => t.trim()).filter((t) => t !== '');
}

export class UserStore {
  private readonly users = new Map<string, User>();

  /** Adds or replaces a user with a plain password (hashed here). */
  add(name: string, password: string, tags: string[] = []): User {
    return this.put({ name, passwordHash: hashPassword(password), tags });
  }

  /** Adds or replaces a user record as it is (hash already computed). */
  put(user: User): User {
    this.users.set(user.name, user);
    return user;
  }

  delete(name: string): boolean {
    return this.users.delete(name);
  }

  get(name: string): User | undefined {
    return this.users.get(name);
  }

  get size(): number {
    return this.users.size;
  }

  /** The user, when the password is right; undefined otherwise. */
  authenticate(name: string, password: string): User | undefined {
    const user = this.users.get(name);
    if (user === undefined || user.passwordHash === '') {
      // Spend the same time as a real check so timing does not reveal which users exist.
      passwordMatches(password, DUMMY_HASH);
      return undefined;
    }
    return passwordMatches(password, user.passwordHash) ? user : undefined;
  }

  get all(): IterableIterator<User> {
    return this.users.values();
  }
}

const DUMMY_HASH = hashPassword('x');
