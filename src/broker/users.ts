// Users and their credentials. Passwords are kept as RabbitMQ keeps them (rabbit_password_hashing
// _sha256): base64(salt ‖ sha256(salt ‖ password)) with a 4-byte random salt, so definitions can
// move between the two brokers. Checks are constant-time.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface User {
  readonly name: string;
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

export class UserStore {
  private readonly users = new Map<string, User>();

  add(name: string, password: string, tags: string[] = []): User {
    const user: User = { name, passwordHash: hashPassword(password), tags };
    this.users.set(name, user);
    return user;
  }

  get(name: string): User | undefined {
    return this.users.get(name);
  }

  /** The user, when the password is right; undefined otherwise. */
  authenticate(name: string, password: string): User | undefined {
    const user = this.users.get(name);
    if (user === undefined) {
      // Spend the same time as a real check so timing does not reveal which users exist.
      passwordMatches(password, hashPassword('x'));
      return undefined;
    }
    return passwordMatches(password, user.passwordHash) ? user : undefined;
  }

  get all(): IterableIterator<User> {
    return this.users.values();
  }
}
