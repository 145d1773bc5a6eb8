/**
 * A registry record: how names compare, when a record answers a query, and the checks a record
 * passes before `dinhdanh registry add` writes it (the same rules as `dinhdanh accounts add`).
 */
import { z } from 'zod';
import { checkPid, normaliseName, validateName } from '../accounts/index.js';
import type { RegistryQuery, RegistryRecord } from './registry.types.js';

/** Bad input for a record (exit 2 in the CLI); the message names the option to fix. */
export class RegistryInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryInputError';
  }
}

/**
 * The form in which two full names are compared: NFC, trimmed, internal whitespace collapsed, lower
 * case. `toLowerCase` (not `toLocaleLowerCase`) applies Unicode's default case mapping, so the
 * answer never depends on the server's locale. Diacritics are never stripped: in Vietnamese they
 * tell different names apart ("Nguyễn" is not "Nguyen"; "Lê" is not "Le").
 */
export function normaliseRegistryName(name: string): string {
  return normaliseName(name).toLowerCase().normalize('NFC');
}

/**
 * A phone as `dinhdanh accounts add` takes it (src/accounts/account.service.ts): separators
 * dropped, a Vietnamese national number (0 + 9 digits) turned into E.164; undefined when it is not a
 * phone number.
 */
export function registryPhoneE164(raw: string): string | undefined {
  const p = raw.replace(/[\s.-]/g, '');
  const e164 = /^0\d{9}$/.test(p) ? `+84${p.slice(1)}` : p;
  return /^\+[1-9]\d{7,14}$/.test(e164) ? e164 : undefined;
}

/**
 * Whether `record` is the person asked about: the same number, full name (normalised), date of birth
 * and gender; and where the record has a mobile number and the query carries one, the same number —
 * Decree 69/2024/ND-CP wants a mobile number registered in the citizen's own name, so where the
 * registry knows it, registration must use it.
 */
export function recordMatches(record: RegistryRecord, q: RegistryQuery): boolean {
  if (record.pid !== q.pid) return false;
  if (normaliseRegistryName(record.full_name) !== normaliseRegistryName(q.fullName)) return false;
  if (record.birthdate !== q.birthdate || record.gender !== q.gender) return false;
  if (record.phone !== undefined && q.phone !== undefined && record.phone !== (registryPhoneE164(q.phone) ?? q.phone)) return false;
  return true;
}

/** One line of a file registry, as read: the shape only (the writer checked the rest). */
const storedRecordSchema = z.object({
  pid: z.string().regex(/^[0-9]{12}$/),
  full_name: z.string().min(1).max(400),
  birthdate: z.string().regex(/^[0-9]{4}-[0-9]{2}-[0-9]{2}$/),
  gender: z.enum(['male', 'female']),
  phone: z.string().max(64).optional(),
});

/** A parsed line of a file registry, or undefined when it is not a record. */
export function parseStoredRecord(value: unknown): RegistryRecord | undefined {
  const parsed = storedRecordSchema.safeParse(value);
  if (!parsed.success) return undefined;
  const { pid, full_name, birthdate, gender, phone } = parsed.data;
  if (phone === undefined) return { pid, full_name, birthdate, gender };
  const e164 = registryPhoneE164(phone);
  return e164 === undefined ? undefined : { pid, full_name, birthdate, gender, phone: e164 };
}

export interface RegistryRecordInput {
  pid: string;
  fullName: string;
  /** YYYY-MM-DD */
  birthdate: string;
  gender: string;
  /** 0912345678 or +84912345678 */
  phone?: string;
}

const PID_MESSAGES: Record<string, string> = {
  format: '--pid must be exactly 12 digits',
  province: '--pid starts with a province code that does not exist (digits 1–3)',
  century_gender: '--pid digit 4 (century and gender) does not match --birthdate and --gender',
  birth_year: '--pid digits 5–6 do not match the year of --birthdate',
};

function isRealDate(s: string): boolean {
  if (!/^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

/**
 * Checks a person's details as `dinhdanh accounts add` does and returns the record to store (name
 * NFC-normalised, phone in E.164). Throws RegistryInputError naming the option to fix.
 */
export function validateRegistryRecord(input: RegistryRecordInput, options: { today?: () => string } = {}): RegistryRecord {
  const today = (options.today ?? (() => new Date().toISOString().slice(0, 10)))();
  if (input.gender !== 'male' && input.gender !== 'female') throw new RegistryInputError('--gender must be male or female');
  const gender = input.gender;
  if (!isRealDate(input.birthdate) || input.birthdate > today || input.birthdate < '1900-01-01') {
    throw new RegistryInputError('--birthdate must be a real date YYYY-MM-DD between 1900-01-01 and today');
  }
  const pidCheck = checkPid(input.pid, { birthdate: input.birthdate, gender });
  if (!pidCheck.ok) throw new RegistryInputError(PID_MESSAGES[pidCheck.reason] ?? '--pid is not valid');
  const name = validateName(input.fullName);
  if (!name.ok) throw new RegistryInputError('--name must be 1–100 letters, spaces, apostrophes, hyphens or periods');
  const record: RegistryRecord = { pid: input.pid, full_name: name.name, birthdate: input.birthdate, gender };
  if (input.phone !== undefined) {
    const phone = registryPhoneE164(input.phone);
    if (phone === undefined) throw new RegistryInputError('--phone must be a phone number such as 0912345678 or +84912345678');
    record.phone = phone;
  }
  return record;
}
