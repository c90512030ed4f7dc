import { afterEach, describe, expect, it } from 'vitest';
import { pick, setLang } from './i18n.svelte';
import { sourceName } from './personas';

// As the sandbox describes 李娜: in both languages, nothing to split.
const description = { zh: '余额不足', en: 'Short balance (¥12.34), small card' };

const sources = [
  { label: { zh: '账户余额', en: 'Alipay balance' } },
  { label: { zh: '余额宝', en: "Yu'e Bao" } },
  { label: { zh: '工商银行储蓄卡', en: 'ICBC debit card' }, card_last4: '1234' },
  { label: { zh: 'MasterCard', en: 'MasterCard' }, card_last4: '4444' },
];

describe('sandbox personas in the tester panel', () => {
  afterEach(() => setLang('zh-CN'));

  it('names every source and description in Chinese', () => {
    setLang('zh-CN');
    expect(sources.map(sourceName)).toEqual([
      '账户余额',
      '余额宝',
      '工商银行储蓄卡 尾号 1234',
      'MasterCard 尾号 4444',
    ]);
    expect(pick(description)).toBe('余额不足');
  });

  it('names every source and description in English without any Chinese', () => {
    setLang('en');
    const names = sources.map(sourceName);
    expect(names).toEqual([
      'Alipay balance',
      "Yu'e Bao",
      'ICBC debit card ending 1234',
      'MasterCard ending 4444',
    ]);
    for (const n of names) expect(n).not.toMatch(/[\u4e00-\u9fff]/);
    expect(pick(description)).toBe('Short balance (¥12.34), small card');
  });
});
