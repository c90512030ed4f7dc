// Sandbox personas as the tester panel shows them, in the app's language. The sandbox names its
// buyers' funding sources in Chinese ("工商银行储蓄卡"); in English the sources are named from their
// kind, bank or network and last four digits instead. (Each persona's description comes in both
// languages, `{zh, en}`: the panel shows it with `pick`.)
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
