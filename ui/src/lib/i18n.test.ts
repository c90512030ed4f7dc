import { afterEach, describe, expect, it } from 'vitest';
import {
  dictionariesForTest,
  formatBeijingTime,
  formatList,
  formatTime,
  keys,
  locale,
  setLang,
  t,
  type MessageKey,
} from './i18n.svelte';
// The generated bindings as text, to enumerate the unions the Rust side can send.
import bindings from './bindings.ts?raw';

const zh = dictionariesForTest['zh-CN'];
const en = dictionariesForTest.en;

/** The string members of a generated union type, e.g. `ErrorCode`. */
function unionMembers(name: string): string[] {
  const start = bindings.indexOf(`export type ${name} =`);
  expect(start, `${name} is in bindings.ts`).toBeGreaterThanOrEqual(0);
  // Doc comments may contain semicolons: drop them before finding the end of the type.
  const rest = bindings.slice(start).replace(/\/\*\*[\s\S]*?\*\//g, '');
  const body = rest.slice(0, rest.indexOf(';'));
  return [...body.matchAll(/"([a-z_]+)"/g)].map((m) => m[1] ?? '');
}

function placeholders(s: string): string[] {
  return [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1] ?? '').sort();
}

afterEach(() => setLang('zh-CN'));

describe('translations', () => {
  it('a count of one takes the singular form where a language has one', () => {
    setLang('en');
    expect(t('orders.items', { n: 1 })).toBe('1 item');
    expect(t('orders.items', { n: 2 })).toBe('2 items');
    expect(t('orders.items', { n: 0 })).toBe('0 items');
    expect(t('catalog.results', { n: 1 })).toBe('1 product');
    setLang('zh-CN');
    expect(t('orders.items', { n: 1 })).toBe('1 件商品');
  });

  it('English has exactly the Chinese keys', () => {
    expect(keys(en).sort()).toEqual(keys(zh).sort());
  });

  it('every message is non-empty and uses the same placeholders in both languages', () => {
    for (const key of keys(zh)) {
      setLang('zh-CN');
      const z = t(key);
      setLang('en');
      const e = t(key);
      expect(z.trim(), key).not.toBe('');
      expect(e.trim(), key).not.toBe('');
      expect(placeholders(e), key).toEqual(placeholders(z));
    }
  });

  it('every error code the Rust side can return has a message in both languages', () => {
    const codes = unionMembers('ErrorCode');
    expect(codes).toContain('port_in_use');
    for (const code of codes) {
      expect(keys(zh), code).toContain(`errors.${code}`);
      expect(keys(en), code).toContain(`errors.${code}`);
    }
  });

  it('every payment failure and order status is translated', () => {
    for (const f of unionMembers('PaymentFailure')) expect(keys(zh)).toContain(`payment.failures.${f}`);
    for (const s of unionMembers('AttemptStatus')) expect(keys(zh)).toContain(`payment.status.${s}`);
    for (const s of unionMembers('OrderStatus')) expect(keys(zh)).toContain(`orders.status.${s}`);
    const carriers = unionMembers('Carrier');
    expect(carriers).toContain('haitao_express');
    for (const c of carriers) expect(keys(zh)).toContain(`orders.carriers.${c}`);
  });

  it('fills placeholders, keeps unknown ones visible and falls back to the key', () => {
    expect(t('catalog.results', { n: 515 })).toBe('共 515 件商品');
    setLang('en');
    expect(locale.lang).toBe('en');
    expect(t('catalog.results', { n: 3 })).toContain('3');
    expect(t('catalog.results')).toContain('{n}');
    // A key the type check would refuse, to see what the app shows if one slipped through.
    expect(t('no.such.key' as MessageKey)).toBe('no.such.key');
  });

  it('Chinese is the default', () => {
    setLang('zh-CN');
    expect(t('app.retry')).toMatch(/[\u4e00-\u9fff]/);
  });
});

describe('dates and lists', () => {
  // 2026-07-12 01:05 UTC is 09:05 on July 12th in Beijing: a day and a month that swap.
  const july12 = '2026-07-12T01:05:00Z';

  it('names the month so a date reads one way only, in Beijing time', () => {
    setLang('en');
    expect(formatTime(july12)).toBe('Jul 12, 2026, 09:05');
    setLang('zh-CN');
    expect(formatTime(july12)).toBe('2026年7月12日 09:05');
    // Late evening UTC is already the next day in Beijing.
    expect(formatTime('2026-12-31T16:30:00Z')).toBe('2027年1月1日 00:30');
    expect(formatTime(null)).toBe('—');
    expect(formatTime('not a time')).toBe('not a time');
  });

  it('says Beijing time where a shopper compares times with Alipay', () => {
    setLang('en');
    expect(formatBeijingTime(july12)).toBe('Jul 12, 2026, 09:05 (Beijing time)');
    setLang('zh-CN');
    expect(formatBeijingTime(july12)).toBe('2026年7月12日 09:05（北京时间）');
  });

  it('joins lists as each language does', () => {
    setLang('en');
    expect(formatList(['Vitamin C', 'Fish oil', 'Sunscreen'])).toBe('Vitamin C, Fish oil, and Sunscreen');
    expect(formatList(['Vitamin C'])).toBe('Vitamin C');
    setLang('zh-CN');
    expect(formatList(['维生素C', '鱼油', '防晒霜'])).toBe('维生素C、鱼油和防晒霜');
    expect(formatList(['维生素C', '鱼油', '防晒霜'])).not.toContain(',');
  });
});
