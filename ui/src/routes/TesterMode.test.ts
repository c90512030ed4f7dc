import { cleanup, render, screen } from '@testing-library/svelte';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { afterEach, describe, expect, it } from 'vitest';
import Payment from './Payment.svelte';
import { app } from '../lib/app.svelte';

/** The payment page of a pending attempt, against a shop whose gateway is (or is not) a sandbox. */
async function paymentPage(sandbox: boolean, testerMode: boolean) {
  app.settings = {
    language: 'en',
    theme: 'system',
    tester_mode: testerMode,
    shop_url: null,
    notifications: true,
  };
  mockIPC(
    (cmd) => {
      if (cmd === 'payment_config') return { sandbox };
      if (cmd === 'tester_personas' || cmd === 'tester_outcomes') return [];
      return null;
    },
    { shouldMockEvents: true },
  );
  render(Payment, { localId: 'L1' });
  // Let the page ask the shop for its payment configuration.
  await new Promise((resolve) => setTimeout(resolve, 20));
}

afterEach(async () => {
  cleanup();
  await new Promise((resolve) => setTimeout(resolve, 0));
  clearMocks();
  app.settings = null;
});

describe('the tester panel', () => {
  it('appears with a sandbox gateway and tester mode on', async () => {
    await paymentPage(true, true);
    expect(await screen.findByTestId('tester-panel')).toBeTruthy();
  });

  it('never appears with a real Alipay gateway, tester mode or not', async () => {
    await paymentPage(false, true);
    expect(screen.queryByTestId('tester-panel')).toBeNull();
  });

  it('stays away when the tester turned tester mode off', async () => {
    await paymentPage(true, false);
    expect(screen.queryByTestId('tester-panel')).toBeNull();
  });
});
