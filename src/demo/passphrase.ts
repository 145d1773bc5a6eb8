/**
 * The demo citizen's password: a new passphrase at every start, four random Vietnamese words
 * (written without tone marks, so any keyboard can type them) and four digits, e.g.
 * `sen-may-trau-den-4821`. About 41 bits of randomness: plenty for a development account on a
 * loopback address, behind the sign-in delays and lockout.
 */
import crypto from 'node:crypto';
import { checkPassword } from '../accounts/password-policy.js';

export const WORDS: readonly string[] = [
  'hoa', 'sen', 'mai', 'lan', 'cuc', 'tre', 'truc', 'tung', 'thong', 'lua', 'ngo', 'khoai', 'cam', 'chanh', 'buoi', 'dua',
  'xoai', 'man', 'dao', 'nhan', 'vai', 'chuoi', 'mit', 'song', 'suoi', 'nui', 'doi', 'bien', 'mua', 'gio', 'may', 'trang',
  'sao', 'nang', 'suong', 'tuyet', 'cay', 'rung', 'dat', 'cat', 'ho', 'ao', 'dam', 'vinh', 'dong', 'ruong', 'vuon', 'lang',
  'pho', 'cau', 'duong', 'nha', 'thuyen', 'buom', 'chim', 'tom', 'cua', 'trau', 'bo', 'ga', 'vit', 'meo', 'ngua', 'voi',
  'huou', 'nai', 'tho', 'soc', 'cong', 'hac', 'rong', 'phuong', 'qua', 'hat', 'mam', 'canh', 'bup', 'che', 'xanh', 'do',
  'vang', 'tim', 'hong', 'nau', 'xuan', 'ha', 'thu', 'com', 'bun', 'banh', 'xoi', 'muoi', 'mat', 'ong', 'sua', 'tra',
  'sach', 'but', 'giay', 'muc', 'den', 'quat', 'non', 'khan', 'guong', 'luoc', 'trong', 'chuong', 'dan', 'dieu', 'vui', 'hien',
  'ngoan', 'nhanh', 'cham', 'cao', 'xa', 'gan', 'moi', 'xinh', 'dep', 'thom', 'ngot', 'am', 'sang', 'toi', 'nhe', 'manh',
];

const MIN_LENGTH = 16;

/** `random(n)` returns an integer in [0, n); crypto.randomInt by default. */
export function demoPassphrase(userInputs: string[] = [], random: (max: number) => number = (max) => crypto.randomInt(max)): string {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const words = Array.from({ length: 4 }, () => WORDS[random(WORDS.length)]!);
    const digits = String(random(10_000)).padStart(4, '0');
    const passphrase = [...words, digits].join('-');
    if (passphrase.length >= MIN_LENGTH && checkPassword(passphrase, { hasSecondFactor: false, userInputs }).ok) return passphrase;
  }
  throw new Error('could not make a demo passphrase that passes the password policy');
}
