// Sandbox personas as the tester panel shows them, in the app's language. The sandbox names its
// buyers' funding sources in Chinese ("工商银行储蓄卡") and describes each persona as
// "English / 中文"; in English the sources are named from their kind, bank or network and last
// four digits instead.
import { locale, t } from './i18n.svelte';

export type SourceLike = {
  kind: string;
  label: string;
  card_brand?: string | null;
  card_last4?: string | null;
};

/** A bank's or card network's code ("ICBC", "MASTERCARD") as a reader expects it. */
function brandName(code: string): string {
  const networks: Record<string, string> = { VISA: 'Visa', MASTERCARD: 'MasterCard', AMEX: 'Amex' };
  return networks[code.toUpperCase()] ?? code;
}

/** The name of a persona's funding source in the current language. */
export function sourceName(a: SourceLike): string {
  if (locale.lang !== 'en') return a.label;
  const params = { brand: brandName(a.card_brand ?? ''), last4: a.card_last4 ?? '' };
  switch (a.kind) {
    case 'balance':
    case 'money_fund':
    case 'huabei':
      return t(`tester.source.${a.kind}`);
    case 'debit_card':
    case 'credit_card':
    case 'international_card':
      return a.card_brand && a.card_last4
        ? t(`tester.source.${a.kind}`, params)
        : t(`tester.source.${a.kind}_plain`);
    default:
      return a.label;
  }
}

/** The half of an "English / 中文" description for the current language (the whole text otherwise). */
export function describePersona(description: string): string {
  const at = description.lastIndexOf(' / ');
  // Only the sandbox's own two-language form: a Chinese half after the last " / ".
  if (at < 0 || !/[\u4e00-\u9fff]/.test(description.slice(at + 3))) return description;
  const [en, zh] = [description.slice(0, at).trim(), description.slice(at + 3).trim()];
  return locale.lang === 'en' ? en : zh;
}
