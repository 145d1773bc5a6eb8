/**
 * Every user-visible string is a message key; Vietnamese first, English second.
 * The locale comes from an explicit choice (the language switch, remembered in a cookie), then the
 * portal's `ui_locales`, then Vietnamese.
 */
import { vi } from './locales/vi.js';
import { en } from './locales/en.js';

export type MessageKey = keyof typeof vi;
export type Locale = 'vi' | 'en';
export const LOCALES: readonly Locale[] = ['vi', 'en'];
export const DEFAULT_LOCALE: Locale = 'vi';

const catalogues: Record<Locale, Record<MessageKey, string>> = { vi, en };

export function isLocale(value: unknown): value is Locale {
  return value === 'vi' || value === 'en';
}

/** Picks the first supported tag of a space-separated `ui_locales` list ("en-GB vi" → en). */
export function localeFromUiLocales(uiLocales: unknown): Locale | undefined {
  if (typeof uiLocales !== 'string') return undefined;
  for (const tag of uiLocales.split(' ')) {
    const primary = tag.split('-')[0]?.toLowerCase();
    if (isLocale(primary)) return primary;
  }
  return undefined;
}

export type Translate = (key: MessageKey, vars?: Record<string, string>) => string;

export function translator(locale: Locale): Translate {
  const messages = catalogues[locale];
  return (key, vars) => {
    const text = messages[key] ?? vi[key] ?? key;
    if (!vars) return text;
    return text.replace(/\{(\w+)\}/g, (m, name: string) => (name in vars ? vars[name]! : m));
  };
}

export function messageKeys(locale: Locale): string[] {
  return Object.keys(catalogues[locale]).sort();
}
