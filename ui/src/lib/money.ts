// Money is integer minor units with an ISO 4217 currency; it is turned into text here only, from
// integers, so nothing is ever rounded through floating point.
import type { Money } from './bindings';

const ZERO_DECIMALS = new Set(['JPY', 'KRW']);

export function exponent(currency: string): number {
  return ZERO_DECIMALS.has(currency) ? 0 : 2;
}

/** The amount as a plain decimal string: `1234.50`, `1000` (JPY), `-0.05`. */
export function decimal(m: Money): string {
  const exp = exponent(m.currency);
  const neg = m.minor < 0;
  const abs = Math.abs(m.minor);
  if (exp === 0) return `${neg ? '-' : ''}${abs}`;
  const scale = 10 ** exp;
  const whole = Math.trunc(abs / scale);
  const frac = String(abs % scale).padStart(exp, '0');
  return `${neg ? '-' : ''}${whole}.${frac}`;
}

/**
 * Symbols that name more than one currency beside the yuan: in English, Intl writes the yen as a
 * bare `¥` (which Chinese readers take for the yuan) and the US dollar as a bare `$`. Prices here
 * stand next to CN¥ amounts, so every foreign currency is written unambiguously.
 */
const UNAMBIGUOUS: Record<string, Record<string, string>> = {
  '¥': { JPY: 'JP¥', CNY: 'CN¥' },
  $: { USD: 'US$' },
};

/** Formats money for the locale: `¥1,234.50`, `US$12.99`, `JP¥4,090`. */
export function formatMoney(m: Money, lang: string): string {
  const fmt = new Intl.NumberFormat(lang, {
    style: 'currency',
    currency: m.currency,
    minimumFractionDigits: exponent(m.currency),
    maximumFractionDigits: exponent(m.currency),
  });
  // Intl accepts decimal strings exactly (no float conversion).
  const parts = fmt.formatToParts(decimal(m) as unknown as number);
  return parts
    .map((p) => {
      if (p.type !== 'currency') return p.value;
      // The yuan keeps its bare ¥ for Chinese readers; everywhere else a bare sign is qualified.
      if (p.value === '¥' && m.currency === 'CNY' && lang.startsWith('zh')) return p.value;
      return UNAMBIGUOUS[p.value]?.[m.currency] ?? p.value;
    })
    .join('');
}

/** A rate in millionths as a percentage: 91000 → `9.10%`, 230588 → `23.06%`. */
export function percent(ppm: number): string {
  const hundredths = Math.round(ppm / 100);
  return `${Math.trunc(hundredths / 100)}.${String(hundredths % 100).padStart(2, '0')}%`;
}

/** CNY per unit from ppm: 7102300 → `7.1023`. */
export function rate(ppm: number): string {
  const whole = Math.trunc(ppm / 1_000_000);
  const frac = String(ppm % 1_000_000)
    .padStart(6, '0')
    .replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : String(whole);
}

export function cny(minor: number): Money {
  return { minor, currency: 'CNY' };
}
