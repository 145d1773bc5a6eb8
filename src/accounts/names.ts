/** Personal names: normalisation, validation and the Vietnamese family/given split. */

export type NameError = 'empty' | 'too_long' | 'invalid_character';
export type NameResult = { ok: true; name: string } | { ok: false; reason: NameError };

export const NAME_MAX_CODE_POINTS = 100;

// Letters, combining marks, space, apostrophe (ASCII and U+2019, as in H’Hen Niê), hyphen, period;
// the first character must be a letter.
const NAME_PATTERN = /^\p{L}[\p{L}\p{M} '\u2019.-]*$/u;
const CONTROL = /\p{Cc}/u;

/** NFC, trimmed, internal whitespace runs collapsed to one space. */
export function normaliseName(s: string): string {
  return s.normalize('NFC').trim().replace(/\s+/gu, ' ');
}

export function validateName(raw: string): NameResult {
  // Checked before normalising, which would otherwise turn tabs and newlines into spaces.
  if (CONTROL.test(raw)) return { ok: false, reason: 'invalid_character' };
  const name = normaliseName(raw);
  if (name.length === 0) return { ok: false, reason: 'empty' };
  if ([...name].length > NAME_MAX_CODE_POINTS) return { ok: false, reason: 'too_long' };
  if (!NAME_PATTERN.test(name)) return { ok: false, reason: 'invalid_character' };
  return { ok: true, name };
}

/**
 * Vietnamese order is family, middle(s), given: "Nguyễn Thị Minh Khai" → Nguyễn / Khai.
 * A single word is taken as the given name (familyName ''); an empty name gives two empty strings.
 */
export function splitVietnameseName(full: string): { familyName: string; givenName: string } {
  const words = normaliseName(full).split(' ').filter((w) => w.length > 0);
  const first = words[0];
  const last = words[words.length - 1];
  if (first === undefined || last === undefined) return { familyName: '', givenName: '' };
  if (words.length === 1) return { familyName: '', givenName: last };
  return { familyName: first, givenName: last };
}
