/**
 * Personal identification number (số định danh cá nhân, 12 digits): shape, province code and the
 * century/gender and birth-year digits checked against the recorded birth date and gender.
 * Layout per PRODUCT.md "Reference data": PPP C YY RRRRRR.
 */
import type { Gender } from '../store/types.js';

export type PidError = 'format' | 'province' | 'century_gender' | 'birth_year';
export type PidResult = { ok: true } | { ok: false; reason: PidError };

export interface PidBirth {
  /** YYYY-MM-DD */
  birthdate: string;
  gender: Gender;
}

/** Province/city codes of birth registration (digits 1–3). */
export const PROVINCE_CODES: ReadonlySet<string> = new Set([
  '001', '002', '004', '006', '008', '010', '011', '012', '014', '015', '017', '019', '020', '022',
  '024', '025', '026', '027', '030', '031', '033', '034', '035', '036', '037', '038', '040', '042',
  '044', '045', '046', '048', '049', '051', '052', '054', '056', '058', '060', '062', '064', '066',
  '067', '068', '070', '072', '074', '075', '077', '079', '080', '082', '083', '084', '086', '087',
  '089', '091', '092', '093', '094', '095', '096',
]);

// [0-9], not \d: only ASCII digits, never Arabic-Indic or full-width ones.
const PID_SHAPE = /^[0-9]{12}$/;
const BIRTHDATE = /^([0-9]{4})-[0-9]{2}-[0-9]{2}$/;

/** Exactly 12 ASCII digits. */
export function isPidShape(s: string): boolean {
  return PID_SHAPE.test(s);
}

/** The century/gender digit (digit 4) a person born in `year` with `gender` must have. */
function centuryGenderDigit(year: number, gender: Gender): number | undefined {
  if (year < 1900 || year > 2199) return undefined;
  const century = Math.floor((year - 1900) / 100); // 0: 1900s, 1: 2000s, 2: 2100s
  return century * 2 + (gender === 'female' ? 1 : 0);
}

export function checkPid(pid: string, birth?: PidBirth): PidResult {
  if (!isPidShape(pid)) return { ok: false, reason: 'format' };
  if (!PROVINCE_CODES.has(pid.slice(0, 3))) return { ok: false, reason: 'province' };

  const digit4 = Number(pid[3]);
  if (digit4 > 5) return { ok: false, reason: 'century_gender' };
  if (!birth) return { ok: true };

  // A birth date we cannot read cannot agree with the number, so the number is refused.
  const year = BIRTHDATE.exec(birth.birthdate)?.[1];
  const expected = year === undefined ? undefined : centuryGenderDigit(Number(year), birth.gender);
  if (year === undefined || expected !== digit4) return { ok: false, reason: 'century_gender' };
  if (pid.slice(4, 6) !== year.slice(2)) return { ok: false, reason: 'birth_year' };
  return { ok: true };
}

/**
 * Pseudonymises a number for logs: only the last 3 digits stay (`*********789`). Anything that is
 * not a well-formed number is masked entirely, so attacker-supplied input never reaches the log.
 */
export function maskPid(pid: string): string {
  if (!isPidShape(pid)) return '*'.repeat(12);
  return '*'.repeat(9) + pid.slice(9);
}
