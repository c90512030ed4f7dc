import { describe, expect, it } from 'vitest';
import { breakdown, periods, planTotal } from './breakdown';
import type { MethodQuote_Serialize } from './bindings';

const cny = (minor: number) => ({ minor, currency: 'CNY' as const });

function quote(over: Partial<MethodQuote_Serialize>): MethodQuote_Serialize {
  return {
    method: { kind: 'balance' },
    order_total: cny(34_327),
    surcharge: cny(0),
    surcharge_rate_ppm: 0,
    installments: null,
    buyer_pays: cny(34_327),
    ...over,
  } as MethodQuote_Serialize;
}

describe('payment breakdown', () => {
  it('is the order amount alone for balance', () => {
    expect(breakdown(quote({})).map((r) => [r.id, r.amount.minor])).toEqual([
      ['order', 34_327],
      ['buyer_pays', 34_327],
    ]);
  });

  it('shows the fee, the periods and the total over the plan for Huabei installments', () => {
    // ¥343.27 in 6 periods at 4.5% paid by the buyer: a ¥15.45 fee, ¥358.72 over the plan.
    const plan = {
      periods: 6,
      fee_rate_ppm: 45_000,
      fee: cny(1_545),
      fee_payer: 'buyer' as const,
      per_period: [cny(5_982), cny(5_978), cny(5_978), cny(5_978), cny(5_978), cny(5_978)],
    };
    const q = quote({
      method: { kind: 'huabei_installments', periods: 6 },
      installments: plan,
      buyer_pays: cny(35_872),
    });
    const rows = breakdown(q);
    expect(rows.map((r) => r.id)).toEqual(['order', 'fee', 'periods', 'buyer_pays']);
    expect(rows.at(-1)!.amount).toEqual(cny(35_872));
    expect(planTotal(plan)).toEqual(q.buyer_pays);
    expect(periods(plan)).toEqual({ n: 6, regular: cny(5_978), first: cny(5_982) });
  });

  it('pays the order amount over the plan when the shop pays the fee', () => {
    const plan = {
      periods: 3,
      fee_rate_ppm: 23_000,
      fee: cny(300),
      fee_payer: 'seller' as const,
      per_period: [cny(3_334), cny(3_333), cny(3_333)],
    };
    const q = quote({ order_total: cny(10_000), installments: plan, buyer_pays: cny(10_000) });
    expect(breakdown(q).at(-1)!.amount).toEqual(cny(10_000));
    expect(periods({ ...plan, per_period: [cny(3_333), cny(3_333), cny(3_333)] }).first).toBeNull();
  });

  it('adds the international card fee', () => {
    const q = quote({ surcharge: cny(1_030), surcharge_rate_ppm: 30_000, buyer_pays: cny(35_357) });
    expect(breakdown(q).map((r) => [r.id, r.amount.minor])).toEqual([
      ['order', 34_327],
      ['surcharge', 1_030],
      ['buyer_pays', 35_357],
    ]);
  });
});
