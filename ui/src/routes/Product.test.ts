import { cleanup, render, screen } from '@testing-library/svelte';
import { clearMocks, mockConvertFileSrc, mockIPC } from '@tauri-apps/api/mocks';
import { afterEach, describe, expect, it } from 'vitest';
import { setLang } from '../lib/i18n.svelte';
import Product from './Product.svelte';
import type { ProductDetail } from '../lib/api';

const hostile = '<script>window.__pwned = true</script><img src=x onerror="window.__pwned = true">';

function product(): ProductDetail {
  const cny = (minor: number) => ({ minor, currency: 'CNY' as const });
  return {
    id: 'P0001',
    name: { zh: `面霜 ${hostile}`, en: `Cream ${hostile}` },
    brand: `<b>Brand</b>`,
    category: 'cosmetics',
    origin: 'JP',
    fulfilment: 'bonded',
    tax_category: 'general',
    price: { minor: 4800, currency: 'JPY' },
    price_cny: cny(22077),
    stock: 5,
    image: 'p0001.svg',
    description: { zh: `说明 ${hostile}`, en: `About ${hostile}` },
    weight_grams: 120,
    landed: {
      price: { minor: 4800, currency: 'JPY' },
      fx: {
        from: 'JPY',
        cny_per_unit_ppm: 46_000,
        as_of: '2026-11-27T00:00:00Z',
        source: { zh: '演示汇率', en: 'Demo rates' },
      },
      price_cny: cny(22077),
      tax_rate_ppm: 91_000,
      vat_rate_ppm: 130_000,
      consumption_tax_rate_ppm: 0,
      tax_cny: cny(2009),
      shipping_cny: cny(0),
      total_cny: cny(24086),
    },
    version: 1,
  } as ProductDetail;
}

afterEach(() => {
  cleanup();
  clearMocks();
  setLang('zh-CN');
});

describe('product page', () => {
  it('shows shop-provided text as text, never as markup', async () => {
    mockIPC((cmd) => (cmd === 'product' ? product() : null));
    mockConvertFileSrc('linux');
    const { container } = render(Product, { id: 'P0001' });
    const name = await screen.findByTestId('product-name');
    expect(name.textContent).toContain('<script>');
    expect(container.textContent).toContain(`说明 ${hostile}`);
    expect(container.textContent).toContain('<b>Brand</b>');
    // Nothing from the shop became an element: no script, no injected image, no bold tag.
    expect(container.querySelector('script')).toBeNull();
    expect(container.querySelector('img[src="x"]')).toBeNull();
    expect(container.querySelector('b')).toBeNull();
    expect((window as unknown as { __pwned?: boolean }).__pwned).toBeUndefined();
  });

  it('names the rate source in the page’s language', async () => {
    mockIPC((cmd) => (cmd === 'product' ? product() : null));
    mockConvertFileSrc('linux');
    const { container } = render(Product, { id: 'P0001' });
    await screen.findByTestId('product-name');
    expect(container.textContent).toContain('演示汇率');
    expect(container.textContent).not.toContain('Demo rates');
    cleanup();
    setLang('en');
    const english = render(Product, { id: 'P0001' });
    await screen.findByTestId('product-name');
    expect(english.container.textContent).toContain('Demo rates');
    expect(english.container.textContent).not.toContain('演示汇率');
  });
});
