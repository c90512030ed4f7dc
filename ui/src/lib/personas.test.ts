import { afterEach, describe, expect, it } from 'vitest';
import { pick, setLang } from './i18n.svelte';
import { sourceName } from './personas';

// As the sandbox describes 李娜: in both languages, nothing to split.
const description = { zh: '余额不足', en: 'Short balance (¥12.34), small card' };

const sources = [
  { kind: 'balance', label: '账户余额' },
  { kind: 'money_fund', label: '余额宝' },
  { kind: 'huabei', label: '花呗' },
  { kind: 'debit_card', label: '工商银行储蓄卡', card_brand: 'ICBC', card_last4: '1234' },
  { kind: 'credit_card', label: '招商银行信用卡', card_brand: 'CMB', card_last4: '5678' },
  { kind: 'international_card', label: 'MasterCard', card_brand: 'MASTERCARD', card_last4: '4444' },
];

describe('sandbox personas in the tester panel', () => {
  afterEach(() => setLang('zh-CN'));

  it('keeps the sandbox’s own Chinese names in Chinese', () => {
    setLang('zh-CN');
    expect(sources.map(sourceName)).toEqual(sources.map((s) => s.label));
    expect(pick(description)).toBe('余额不足');
  });

  it('names every source and description in English without any Chinese', () => {
    setLang('en');
    const names = sources.map(sourceName);
    expect(names).toEqual([
      'Alipay balance',
      "Yu'e Bao",
      'Huabei',
      'ICBC debit card ending 1234',
      'CMB credit card ending 5678',
      'MasterCard ending 4444',
    ]);
    for (const n of names) expect(n).not.toMatch(/[\u4e00-\u9fff]/);
    expect(pick(description)).toBe('Short balance (¥12.34), small card');
    // A card without its digits.
    expect(sourceName({ kind: 'debit_card', label: '储蓄卡' })).toBe('Debit card');
  });
});
