import { describe, expect, it } from 'vitest';
import { checkId } from './id';

describe('checkId (GB 11643)', () => {
  it('accepts valid numbers, with X as check digit in either case', () => {
    expect(checkId('110105198803151232')).toBeNull();
    expect(checkId(' 110105198803151232 ')).toBeNull();
    expect(checkId('11010519491231002X')).toBeNull();
    expect(checkId('11010519491231002x')).toBeNull();
  });

  it('says what is wrong', () => {
    expect(checkId('')).toBe('format');
    expect(checkId('11010519880315123')).toBe('format');
    expect(checkId('1101051988031512345')).toBe('format');
    expect(checkId('11010519880315123A')).toBe('format');
    expect(checkId('110105198802301232')).toBe('date'); // 30 February
    expect(checkId('110105189912311232')).toBe('date'); // before 1900
    expect(checkId('110105299912311232')).toBe('date'); // in the future
    expect(checkId('110105198803151233')).toBe('check');
  });

  it('catches every single-digit typo in a valid number', () => {
    const valid = '110105198803151232';
    for (let i = 0; i < 17; i++) {
      for (let d = 0; d <= 9; d++) {
        if (String(d) === valid[i]) continue;
        const typo = valid.slice(0, i) + d + valid.slice(i + 1);
        expect(checkId(typo), typo).not.toBeNull();
      }
    }
  });
});
