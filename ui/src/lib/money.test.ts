import { describe, expect, it } from 'vitest';
import { decimal, exponent, formatMoney, percent, rate } from './money';

describe('decimal', () => {
  it('writes minor units exactly', () => {
    expect(decimal({ minor: 123450, currency: 'CNY' })).toBe('1234.50');
    expect(decimal({ minor: 5, currency: 'CNY' })).toBe('0.05');
    expect(decimal({ minor: -5, currency: 'CNY' })).toBe('-0.05');
    expect(decimal({ minor: 0, currency: 'USD' })).toBe('0.00');
    expect(decimal({ minor: 4090, currency: 'JPY' })).toBe('4090');
    expect(decimal({ minor: -1200, currency: 'KRW' })).toBe('-1200');
  });

  it('round-trips every amount without floating-point drift', () => {
    // A deterministic sweep over small, boundary and large values (up to 2^53 - 1).
    let x = 1;
    const values = [0, 1, 9, 10, 99, 100, 101, 999_999, 500_000, 2_600_000, Number.MAX_SAFE_INTEGER];
    for (let i = 0; i < 2000; i++) {
      x = (x * 48271) % 2147483647;
      values.push(x, x * 1021, -x);
    }
    for (const minor of values) {
      for (const currency of ['CNY', 'USD', 'JPY'] as const) {
        const text = decimal({ minor, currency });
        const back = BigInt(text.replace('.', ''));
        expect(back).toBe(BigInt(minor));
        expect(text.split('.')[1]?.length ?? 0).toBe(exponent(currency));
      }
    }
  });
});

describe('formatMoney', () => {
  it('formats for Chinese and English readers', () => {
    expect(formatMoney({ minor: 22077, currency: 'CNY' }, 'zh-CN')).toBe('¥220.77');
    expect(formatMoney({ minor: 409000, currency: 'JPY' }, 'zh-CN')).toBe('JP¥409,000');
    expect(formatMoney({ minor: 1299, currency: 'USD' }, 'en')).toBe('US$12.99');
    expect(formatMoney({ minor: 1299, currency: 'USD' }, 'zh-CN')).toBe('US$12.99');
    expect(formatMoney({ minor: 500000, currency: 'CNY' }, 'en')).toBe('CN¥5,000.00');
  });

  it('never writes a foreign currency with a sign that could be the yuan or another dollar', () => {
    // In English, Intl writes the yen as a bare ¥ beside CN¥ amounts.
    expect(formatMoney({ minor: 1490, currency: 'JPY' }, 'en')).toBe('JP¥1,490');
    expect(formatMoney({ minor: -1490, currency: 'JPY' }, 'en')).toBe('-JP¥1,490');
    for (const lang of ['en', 'zh-CN']) {
      for (const currency of ['JPY', 'USD', 'EUR', 'GBP', 'KRW', 'AUD', 'HKD', 'SGD'] as const) {
        const text = formatMoney({ minor: 123400, currency }, lang);
        expect(text, `${lang} ${currency}`).not.toMatch(/^-?[¥$]\d/);
      }
    }
    // The yuan itself: ¥ for Chinese readers, CN¥ for English ones.
    expect(formatMoney({ minor: 7080, currency: 'CNY' }, 'zh-CN')).toBe('¥70.80');
    expect(formatMoney({ minor: 7080, currency: 'CNY' }, 'en')).toBe('CN¥70.80');
  });

  it('keeps large amounts exact (no float rounding)', () => {
    // 90,071,992,547,409.91 as a float would print ...409.9 or ...410
    expect(formatMoney({ minor: Number.MAX_SAFE_INTEGER, currency: 'CNY' }, 'zh-CN')).toBe(
      '¥90,071,992,547,409.91',
    );
  });
});

describe('rates', () => {
  it('prints tax rates and exchange rates from millionths', () => {
    expect(percent(91000)).toBe('9.10%');
    expect(percent(230588)).toBe('23.06%');
    expect(percent(0)).toBe('0.00%');
    expect(rate(7102300)).toBe('7.1023');
    expect(rate(47520)).toBe('0.04752');
    expect(rate(1000000)).toBe('1');
  });
});
