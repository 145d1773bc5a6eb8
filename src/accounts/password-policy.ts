/**
 * Password rules (PRODUCT.md, NIST SP 800-63B §5.1.1.2): NFC-normalised, length in code points,
 * any Unicode except control characters, no composition rules, never truncated, refused when
 * common (bundled list or strength estimator) or when it contains the person's own data.
 * Nothing here logs: the password must never reach a log line.
 */
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import * as zxcvbnCommon from '@zxcvbn-ts/language-common';
import * as zxcvbnEn from '@zxcvbn-ts/language-en';

export type PasswordError = 'too_short' | 'too_long' | 'common' | 'contains_personal' | 'invalid';
export type PasswordResult = { ok: true; normalised: string } | { ok: false; reason: PasswordError };

export interface PasswordContext {
  hasSecondFactor: boolean;
  /** Personal data the password must not contain (identification number, birthdate digits, ...). */
  userInputs?: string[];
}

export const PASSWORD_MIN = 12;
export const PASSWORD_MIN_WITH_SECOND_FACTOR = 8;
export const PASSWORD_MAX = 128;
/** zxcvbn scores below this are refused as too guessable. */
export const MIN_STRENGTH_SCORE = 3;
/**
 * With a second factor the password is one of two factors and online guessing is bounded by both:
 * the estimator then only refuses what is found in dictionaries or patterns (score below 2, fewer
 * than 10^8 guesses). At score 3 no 8-character password typed on a keyboard passes (zxcvbn's
 * brute-force estimate for 8 characters is 10^8), which made PRODUCT.md's 8-character minimum 9.
 */
export const MIN_STRENGTH_SCORE_WITH_SECOND_FACTOR = 2;
/** Shorter user inputs would refuse too much (e.g. a two-letter given name inside any word). */
const MIN_USER_INPUT_CODE_POINTS = 3;

// Lone surrogates are not Unicode text and would hash as U+FFFD (collisions).
const LONE_SURROGATE = /\p{Cs}/u;

/** C0 controls (U+0000–U+001F) and DEL: invisible, and mangled by forms and terminals. */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x1f || c === 0x7f) return true;
  }
  return false;
}

let zxcvbn: ZxcvbnFactory | undefined;
let commonPasswords: ReadonlySet<string> | undefined;

/** Built on first use: the dictionaries are large and most processes never check a password. */
function estimator(): ZxcvbnFactory {
  zxcvbn ??= new ZxcvbnFactory({
    dictionary: { ...zxcvbnCommon.dictionary, ...zxcvbnEn.dictionary },
    graphs: zxcvbnCommon.adjacencyGraphs,
    translations: zxcvbnEn.translations,
  });
  return zxcvbn;
}

function commonList(): ReadonlySet<string> {
  commonPasswords ??= new Set(zxcvbnCommon.dictionary['passwords-common'].map((p) => p.toLowerCase()));
  return commonPasswords;
}

export function checkPassword(password: string, context: PasswordContext): PasswordResult {
  // §5.1.1.2: normalise before length checks and hashing so every form of the same text matches.
  const normalised = password.normalize('NFC');
  if (hasControl(normalised) || LONE_SURROGATE.test(normalised)) return { ok: false, reason: 'invalid' };

  // Code points, not UTF-16 units: an emoji or a Vietnamese letter is one character to the user.
  const length = [...normalised].length;
  const min = context.hasSecondFactor ? PASSWORD_MIN_WITH_SECOND_FACTOR : PASSWORD_MIN;
  if (length < min) return { ok: false, reason: 'too_short' };
  if (length > PASSWORD_MAX) return { ok: false, reason: 'too_long' };

  const lower = normalised.toLowerCase();
  const inputs = (context.userInputs ?? [])
    .map((i) => i.normalize('NFC').toLowerCase().trim())
    .filter((i) => [...i].length >= MIN_USER_INPUT_CODE_POINTS);
  if (inputs.some((i) => lower.includes(i))) return { ok: false, reason: 'contains_personal' };

  // §5.1.1.2: compare against commonly used and expected values.
  if (commonList().has(lower)) return { ok: false, reason: 'common' };
  const minScore = context.hasSecondFactor ? MIN_STRENGTH_SCORE_WITH_SECOND_FACTOR : MIN_STRENGTH_SCORE;
  if (estimator().check(normalised, inputs).score < minScore) return { ok: false, reason: 'common' };

  return { ok: true, normalised };
}
