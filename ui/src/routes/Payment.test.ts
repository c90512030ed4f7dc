import { cleanup, fireEvent, render, screen } from '@testing-library/svelte';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { afterEach, describe, expect, it } from 'vitest';
import Payment from './Payment.svelte';
import type { LocalAttempt_Serialize, PaymentOutcome_Serialize } from '../lib/api';

function outcome(status: string, failure: string | null = null): PaymentOutcome_Serialize {
  const local: LocalAttempt_Serialize = {
    local_id: 'L1',
    order_id: 'O1',
    attempt_id: 'A1',
    out_trade_no: 'HT20261127000001',
    method: { kind: 'balance' },
    mode: 'in_app',
    amount_fen: 22077,
    status: status as LocalAttempt_Serialize['status'],
    // What the backend computes (LocalStatus::is_final); the page only reads it.
    is_final: ['paid', 'failed', 'closed'].includes(status),
    return_url: 'http://127.0.0.1:1/return',
    last_error: null,
    created_at: '2026-11-27T02:00:00Z',
    updated_at: '2026-11-27T02:00:00Z',
  };
  return {
    local,
    attempt: {
      id: 'A1',
      order_id: 'O1',
      out_trade_no: 'HT20261127000001',
      method: { kind: 'balance' } as never,
      mode: 'in_app',
      amount: { minor: 22077, currency: 'CNY' },
      status: (status === 'returned' ? 'redirected' : status) as never,
      failure: failure as never,
      cashier_url: null,
      qr_code: null,
      return_url: local.return_url,
      trade_no: null,
      created_at: local.created_at,
      updated_at: local.updated_at,
      expires_at: '2026-11-27T02:30:00Z',
    },
    return_verified: null,
    return_problem: null,
    order: null,
  };
}

/** Answers the commands the payment page calls; `statuses` are returned by successive checks. */
function backend(statuses: PaymentOutcome_Serialize[]) {
  const calls: string[] = [];
  mockIPC(
    (cmd) => {
      calls.push(cmd);
      if (cmd === 'payment_config') return { sandbox: false };
      if (cmd === 'payment_check') return statuses.length > 1 ? statuses.shift() : statuses[0];
      if (cmd === 'payment_abandon') return outcome('closed');
      return null;
    },
    { shouldMockEvents: true },
  );
  return calls;
}

afterEach(async () => {
  cleanup();
  // Let the page's event unsubscription run before the mocked IPC goes away.
  await new Promise((resolve) => setTimeout(resolve, 0));
  clearMocks();
});

describe('payment page', () => {
  it('shows a confirmed payment with its amount and a way to the order', async () => {
    backend([outcome('paid')]);
    render(Payment, { localId: 'L1' });
    expect(await screen.findByTestId('paid')).toBeTruthy();
    expect(screen.getByTestId('payment-state').textContent).toContain('¥220.77');
    expect(screen.getByTestId('view-order').getAttribute('href')).toBe('#/orders/O1');
  });

  it('explains a short balance and offers to pay another way', async () => {
    backend([outcome('failed', 'insufficient_funds')]);
    render(Payment, { localId: 'L1' });
    expect(await screen.findByTestId('failed')).toBeTruthy();
    expect(screen.getByTestId('payment-state').textContent).toContain('余额');
    expect(screen.getByTestId('pay-again')).toBeTruthy();
  });

  it('never calls an unknown result a failure, and checks again on request', async () => {
    const calls = backend([outcome('unknown'), outcome('paid')]);
    render(Payment, { localId: 'L1' });
    const unknown = await screen.findByTestId('unknown');
    expect(unknown.textContent).not.toMatch(/失败/);
    expect(screen.queryByTestId('pay-again')).toBeNull();
    await fireEvent.click(screen.getByTestId('check-again'));
    expect(await screen.findByTestId('paid')).toBeTruthy();
    expect(calls.filter((c) => c === 'payment_check')).toHaveLength(2);
  });

  it('lets the buyer give up while waiting', async () => {
    const calls = backend([outcome('redirected')]);
    render(Payment, { localId: 'L1' });
    await fireEvent.click(await screen.findByTestId('give-up'));
    expect(await screen.findByTestId('failed')).toBeTruthy();
    expect(calls).toContain('payment_abandon');
  });
});
