// Translations: Chinese (zh-CN) by default, full English. `t(key, params)` reads the current
// language reactively.
import { en } from './messages/en';
import { zh } from './messages/zh';

export type Lang = 'zh-CN' | 'en';
export type Messages = typeof zh;

export const locale = $state<{ lang: Lang }>({ lang: 'zh-CN' });

const dictionaries: Record<Lang, Messages> = { 'zh-CN': zh, en };

function lookup(dict: Messages, key: string): string | undefined {
  let node: unknown = dict;
  for (const part of key.split('.')) {
    if (node && typeof node === 'object' && part in node) {
      node = (node as Record<string, unknown>)[part];
    } else {
      return undefined;
    }
  }
  return typeof node === 'string' ? node : undefined;
}

/** Every key of the message tree, dot-joined: `t()` refuses anything else at type-check time. */
type Keys<T, Prefix extends string = ''> = {
  [K in keyof T & string]: T[K] extends string ? `${Prefix}${K}` : Keys<T[K], `${Prefix}${K}.`>;
}[keyof T & string];
export type MessageKey = Keys<Messages>;

/** The message for `key` in the current language, with `{name}` placeholders filled. */
export function t(key: MessageKey, params: Record<string, string | number> = {}): string {
  // A count of one takes the `_one` form where there is one ("1 item", not "1 items").
  const one = params.n === 1 ? lookup(dictionaries[locale.lang], `${key}_one`) : undefined;
  const text = one ?? lookup(dictionaries[locale.lang], key) ?? lookup(zh, key) ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name: string) =>
    name in params ? String(params[name]) : `{${name}}`,
  );
}

/** Text in both languages from the shop (`{zh, en}`), picked for the current language. */
export function pick(l: { zh: string; en: string }): string {
  return locale.lang === 'en' ? l.en : l.zh;
}

export function setLang(lang: Lang): void {
  locale.lang = lang;
  if (typeof document !== 'undefined') document.documentElement.lang = lang;
}

/**
 * A timestamp in Beijing time, formatted for the current language with the month named, so the
 * date reads one way only: `Dec 7, 2026, 09:05` / `2026年12月7日 09:05`.
 */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  // A throwaway value for formatting, not state.
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(locale.lang, {
    timeZone: 'Asia/Shanghai',
    year: 'numeric',
    month: locale.lang === 'en' ? 'short' : 'long',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).format(d);
}

/**
 * [`formatTime`] saying that the time is Beijing's, for times a shopper acts on or compares with
 * Alipay's (payment deadlines, the gateway's timestamps): `Dec 7, 2026, 09:05 (Beijing time)`.
 */
export function formatBeijingTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  return t('common.beijing_time', { time: formatTime(iso) });
}

/** Items joined as the current language joins a list: `a, b, and c` / `a、b和c`. */
export function formatList(items: string[]): string {
  return new Intl.ListFormat(locale.lang, { style: 'long', type: 'conjunction' }).format(items);
}

/** Every key of the Chinese dictionary (the reference), for completeness tests. */
export function keys(dict: unknown = zh, prefix = ''): MessageKey[] {
  if (typeof dict === 'string') return [prefix as MessageKey];
  if (!dict || typeof dict !== 'object') return [];
  return Object.entries(dict).flatMap(([k, v]) => keys(v, prefix ? `${prefix}.${k}` : k));
}

export const dictionariesForTest = dictionaries;
