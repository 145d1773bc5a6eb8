/**
 * Masked destinations, for pages ("we sent a code to +84 *** *** 678") and logs. Enough for the
 * citizen to recognise their own number or address, not enough to learn someone else's.
 */

/** ITU-T E.164 country calling codes of one digit (1, 7) and the two-digit ones; all others have three. */
const CC1 = new Set(['1', '7']);
const CC2 = new Set([
  '20', '27', '30', '31', '32', '33', '34', '36', '39', '40', '41', '43', '44', '45', '46', '47', '48', '49',
  '51', '52', '53', '54', '55', '56', '57', '58', '60', '61', '62', '63', '64', '65', '66', '81', '82', '84',
  '86', '90', '91', '92', '93', '94', '95', '98',
]);

/** `+84912345678` → `+84 *** *** 678`: country code and the last three digits. */
export function maskPhone(phone: string): string {
  const digits = phone.replace(/[\s.()-]/g, '');
  const m = /^\+([1-9]\d{7,14})$/.exec(digits);
  if (!m) return digits.length > 6 && /^\d+$/.test(digits) ? `*** *** ${digits.slice(-3)}` : '***';
  const n = m[1]!;
  const cc = CC1.has(n.slice(0, 1)) ? n.slice(0, 1) : CC2.has(n.slice(0, 2)) ? n.slice(0, 2) : n.slice(0, 3);
  return `+${cc} *** *** ${n.slice(-3)}`;
}

/** `an@example.vn` → `a***@example.vn`: the first character of the local part (none if it is one character) and the whole domain. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at < 1 || at === email.length - 1) return '***';
  const local = email.slice(0, at);
  const domain = email.slice(at + 1);
  // A fixed-length mask: the length of the local part is not revealed.
  const chars = [...local];
  return chars.length === 1 ? `***@${domain}` : `${chars[0]}***@${domain}`;
}

export function maskDestination(channel: 'sms' | 'email', to: string): string {
  return channel === 'sms' ? maskPhone(to) : maskEmail(to);
}
