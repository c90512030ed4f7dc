import { cleanup, render, screen } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';
import QuotaBar from './QuotaBar.svelte';
import { setLang } from '../lib/i18n.svelte';
import { cny } from '../lib/money';

afterEach(() => {
  cleanup();
  setLang('zh-CN');
});

describe('QuotaBar', () => {
  it('shows the annual quota used and remaining in yuan', () => {
    render(QuotaBar, { used: cny(600_000), limit: cny(2_600_000), remaining: cny(2_000_000) });
    const label = screen.getByTestId('quota-bar').textContent ?? '';
    expect(label).toContain('¥6,000.00');
    expect(label).toContain('¥20,000.00');
    expect(label).toContain('¥26,000.00');
    const meter = screen.getByRole('meter');
    expect(meter.getAttribute('aria-valuenow')).toBe('600000');
    expect(meter.getAttribute('aria-valuemax')).toBe('2600000');
    expect((meter.querySelector('.used') as HTMLElement).style.width).toBe('23%');
  });

  it('marks a cart that would exceed what is left of the year', () => {
    const { container } = render(QuotaBar, {
      used: cny(2_500_000),
      limit: cny(2_600_000),
      remaining: cny(100_000),
      pending: cny(300_000),
    });
    const pending = container.querySelector('.pending') as HTMLElement;
    expect(pending.classList.contains('over')).toBe(true);
    // The bar never draws past 100%.
    expect(pending.style.width).toBe('4%');
  });

  it('does not mark a cart that fits', () => {
    const { container } = render(QuotaBar, {
      used: cny(0),
      limit: cny(2_600_000),
      remaining: cny(2_600_000),
      pending: cny(500_000),
    });
    expect(container.querySelector('.pending')?.classList.contains('over')).toBe(false);
  });

  it('speaks English when asked', () => {
    setLang('en');
    render(QuotaBar, { used: cny(100), limit: cny(2_600_000), remaining: cny(2_599_900) });
    expect(screen.getByTestId('quota-bar').textContent).toMatch(/[a-z]/);
    expect(screen.getByTestId('quota-bar').textContent).not.toMatch(/[\u4e00-\u9fff]/);
  });
});
