/**
 * Registering persons (operators, through the CLI) and reading them.
 */
import crypto from 'node:crypto';
import { z } from 'zod';
import type { Person, PersonRepository } from '../store/index.js';
import { StoreConflictError } from '../store/index.js';
import type { AuditService } from '../audit/index.js';
import type { PasswordHasher } from './password-hasher.js';
import { checkPassword } from './password-policy.js';
import { checkPid, maskPid } from './pid.js';
import { normaliseName, splitVietnameseName, validateName } from './names.js';

export class AccountInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AccountInputError';
  }
}

export const newAccountSchema = z.object({
  pid: z.string(),
  name: z.string(),
  birthdate: z.string(),
  gender: z.string(),
  email: z.string().optional(),
  phone: z.string().optional(),
  level: z.string().optional(),
  password: z.string(),
  /**
   * The operator proved the contacts are the person's (a code to each, answered at the counter):
   * only verified contacts can recover the account (selfservice/recovery.service.ts).
   */
  contactsVerified: z.boolean().optional(),
});

const PID_MESSAGES: Record<string, string> = {
  format: '--pid must be exactly 12 digits',
  province: '--pid starts with a province code that does not exist (digits 1–3)',
  century_gender: '--pid digit 4 (century and gender) does not match --birthdate and --gender',
  birth_year: '--pid digits 5–6 do not match the year of --birthdate',
};

const PASSWORD_MESSAGES: Record<string, string> = {
  too_short: 'the password must be at least 12 characters',
  too_long: 'the password must be at most 128 characters',
  common: 'the password is too common or easy to guess; choose a longer passphrase',
  contains_personal: 'the password must not contain the identification number or date of birth',
  invalid: 'the password contains control characters',
};

function isRealDate(s: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

export interface AccountService {
  /** `actor.operator`: who registered the person (the CLI), recorded with the audit event. */
  create(input: z.input<typeof newAccountSchema>, actor?: { operator: string }): Promise<Person>;
  findById(id: string): Promise<Person | undefined>;
  list(options: { limit: number; offset: number }): Promise<Person[]>;
}

export function createAccountService(deps: { persons: PersonRepository; hasher: PasswordHasher; audit: AuditService; today?: () => string }): AccountService {
  const today = deps.today ?? (() => new Date().toISOString().slice(0, 10));
  return {
    async create(raw, actor) {
      const parsed = newAccountSchema.safeParse(raw);
      if (!parsed.success) throw new AccountInputError('missing or malformed account fields');
      const input = parsed.data;

      if (input.gender !== 'male' && input.gender !== 'female') throw new AccountInputError('--gender must be male or female');
      const gender = input.gender;
      if (!isRealDate(input.birthdate) || input.birthdate > today() || input.birthdate < '1900-01-01') {
        throw new AccountInputError('--birthdate must be a real date YYYY-MM-DD between 1900-01-01 and today');
      }
      const pidCheck = checkPid(input.pid, { birthdate: input.birthdate, gender });
      if (!pidCheck.ok) throw new AccountInputError(PID_MESSAGES[pidCheck.reason] ?? '--pid is not valid');

      const name = normaliseName(input.name);
      const nameCheck = validateName(name);
      if (!nameCheck.ok) throw new AccountInputError('--name must be 1–100 letters, spaces, apostrophes, hyphens or periods');
      const { familyName, givenName } = splitVietnameseName(name);

      let email: string | null = null;
      if (input.email !== undefined) {
        const e = input.email.trim().toLowerCase();
        if (!z.email().safeParse(e).success || e.length > 254) throw new AccountInputError('--email is not a valid e-mail address');
        email = e;
      }
      let phone: string | null = null;
      if (input.phone !== undefined) {
        const p = input.phone.replace(/[\s.-]/g, '');
        // E.164, or a Vietnamese national number (0 + 9 digits) converted to E.164.
        const e164 = /^0\d{9}$/.test(p) ? `+84${p.slice(1)}` : p;
        if (!/^\+[1-9]\d{7,14}$/.test(e164)) throw new AccountInputError('--phone must be a phone number such as 0912345678 or +84912345678');
        phone = e164;
      }
      const level = input.level === undefined ? 1 : input.level === '1' ? 1 : input.level === '2' ? 2 : undefined;
      if (level === undefined) throw new AccountInputError('--level must be 1 or 2');

      const pw = checkPassword(input.password, {
        hasSecondFactor: false,
        userInputs: [input.pid, input.birthdate.replaceAll('-', ''), input.birthdate],
      });
      if (!pw.ok) throw new AccountInputError(PASSWORD_MESSAGES[pw.reason] ?? 'the password is not acceptable');

      const passwordHash = await deps.hasher.hash(pw.normalised);
      try {
        const person = await deps.persons.create({
          id: crypto.randomUUID(),
          pid: input.pid,
          name,
          familyName,
          givenName,
          birthdate: input.birthdate,
          gender,
          email,
          emailVerified: email !== null && input.contactsVerified === true,
          phone,
          phoneVerified: phone !== null && input.contactsVerified === true,
          address: null,
          level,
          passwordHash,
          status: 'active',
        });
        deps.audit.record('ACCOUNT_CREATED', { person: person.id, pid: maskPid(person.pid), level, ...(actor ? { operator: actor.operator } : {}) });
        return person;
      } catch (err) {
        if (err instanceof StoreConflictError) throw new AccountInputError('an account with this --pid already exists');
        throw err;
      }
    },
    findById: (id) => deps.persons.findById(id),
    list: (options) => deps.persons.list(options),
  };
}
