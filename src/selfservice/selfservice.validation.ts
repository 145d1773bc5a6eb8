/**
 * The forms of registration and recovery: strict shapes (every field a bounded string, unknown
 * fields refused: ten mistakes #6), then the rules of each value. A value that breaks a rule is a
 * result naming the field and the message, never an exception.
 */
import { z } from 'zod';
import type { Gender } from '../store/index.js';
import { checkPid, normaliseName, validateName } from '../accounts/index.js';
import type { MessageKey } from '../http/i18n.js';
import type { RegistrationDetails } from './flow.js';

const csrf = z.string().max(128);

export const detailsForm = {
  _csrf: csrf,
  pid: z.string().max(64),
  full_name: z.string().max(300),
  birthdate: z.string().max(32),
  gender: z.string().max(16).optional(),
  phone: z.string().max(64),
  email: z.string().max(320).optional(),
};
export const codeForm = { _csrf: csrf, code: z.string().max(64) };
export const csrfOnlyForm = { _csrf: csrf };
export const passwordForm = { _csrf: csrf, password: z.string().max(1024), password_confirm: z.string().max(1024) };
export const offerForm = { _csrf: csrf, choice: z.enum(['now', 'later']) };
export const recoverStartForm = { _csrf: csrf, pid: z.string().max(64), contact: z.string().max(320) };
export const factorForm = {
  _csrf: csrf,
  method: z.enum(['totp', 'recovery']).optional(),
  code: z.string().max(64).optional(),
  reset: z.string().max(8).optional(),
};
export const passkeyForm = { _csrf: csrf, response: z.string().max(12_000) };
export const cancelForm = { _csrf: csrf, token: z.string().max(64) };

export type FieldErrors = Partial<Record<'pid' | 'full_name' | 'birthdate' | 'gender' | 'phone' | 'email' | 'contact', MessageKey>>;

function isRealDate(s: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

/** A phone as people type it (0912 345 678, +84 912 345 678) in E.164, or undefined. */
export function toE164(input: string): string | undefined {
  const p = input.replace(/[\s.()-]/g, '');
  const e164 = /^0\d{9}$/.test(p) ? `+84${p.slice(1)}` : p;
  return /^\+[1-9]\d{7,14}$/.test(e164) ? e164 : undefined;
}

/** +84 and a 9-digit mobile number (prefixes 3, 5, 7, 8, 9 since the 2018 renumbering). */
export const VN_MOBILE = /^\+84[35789]\d{8}$/;

const EMAIL = z.email();
export function toEmail(input: string): string | undefined {
  const e = input.trim().toLowerCase();
  return e.length <= 254 && EMAIL.safeParse(e).success ? e : undefined;
}

/** The registration details, checked; `today` bounds the birth date. */
export function checkDetails(form: z.infer<z.ZodObject<typeof detailsForm>>, today: string): { ok: true; details: RegistrationDetails } | { ok: false; errors: FieldErrors } {
  const errors: FieldErrors = {};
  const pid = form.pid.trim();
  const birthdate = form.birthdate.trim();
  const gender = form.gender === 'male' || form.gender === 'female' ? (form.gender as Gender) : undefined;
  if (!gender) errors.gender = 'register.gender_required';
  if (!isRealDate(birthdate) || birthdate > today || birthdate < '1900-01-01') errors.birthdate = 'register.birthdate_format';
  if (!/^\d{12}$/.test(pid)) errors.pid = 'login.identifier_format';
  else if (gender && !errors.birthdate && !checkPid(pid, { birthdate, gender }).ok) errors.pid = 'register.pid_inconsistent';
  const fullName = normaliseName(form.full_name);
  if (!validateName(fullName).ok) errors.full_name = 'register.name_format';
  // A Vietnamese mobile number (Decree 69/2024/ND-CP: a number registered in the citizen's own
  // name, which for a Vietnamese subscriber is a +84 mobile number). It also keeps registration from
  // sending codes to premium-rate numbers abroad (SMS pumping).
  const phone = toE164(form.phone);
  if (!phone || !VN_MOBILE.test(phone)) errors.phone = 'register.phone_format';
  let email: string | null = null;
  if (form.email !== undefined && form.email.trim() !== '') {
    email = toEmail(form.email) ?? null;
    if (!email) errors.email = 'register.email_format';
  }
  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return { ok: true, details: { pid, fullName, birthdate, gender: gender!, phone: phone!, email } };
}
