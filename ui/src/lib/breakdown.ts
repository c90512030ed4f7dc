// What a payment method costs, as one breakdown shown wherever the amount appears (checkout, the
// payment screen, the order): the order amount, then the installment fee and who pays it, the
// periods and the total over the plan, or the international card fee, and what the shopper pays.
import type { InstallmentPlan, Money, MethodQuote_Serialize, PaymentMethod } from './bindings';

export type RowId = 'order' | 'fee' | 'periods' | 'surcharge' | 'buyer_pays';

export interface Row {
  id: RowId;
  amount: Money;
}

/** The sum of an installment plan's periods (what the shopper pays over the plan). */
export function planTotal(plan: InstallmentPlan): Money {
  const currency = plan.per_period[0]?.currency ?? plan.fee.currency;
  return { minor: plan.per_period.reduce((sum, p) => sum + p.minor, 0), currency };
}

/**
 * The periods of a plan as the shopper pays them: the regular amount, and the first period's when
 * it carries the rounding remainder.
 */
export function periods(plan: InstallmentPlan): { n: number; regular: Money; first: Money | null } {
  const last = plan.per_period[plan.per_period.length - 1] ?? plan.fee;
  const first = plan.per_period[0] ?? last;
  return { n: plan.periods, regular: last, first: first.minor === last.minor ? null : first };
}

/**
 * The rows of a quote's breakdown. The last is what the shopper pays: over the plan for
 * installments, the order amount plus the fee for an international card.
 */
export function breakdown(q: MethodQuote_Serialize): Row[] {
  const rows: Row[] = [{ id: 'order', amount: q.order_total }];
  if (q.installments) {
    rows.push({ id: 'fee', amount: q.installments.fee });
    rows.push({ id: 'periods', amount: periods(q.installments).regular });
  }
  if (q.surcharge.minor > 0) rows.push({ id: 'surcharge', amount: q.surcharge });
  rows.push({ id: 'buyer_pays', amount: q.installments ? planTotal(q.installments) : q.buyer_pays });
  return rows;
}

/** A payment method as one key: `balance`, `huabei_6`. */
export function methodKey(m: PaymentMethod): string {
  return m.kind === 'huabei_installments' ? `huabei_${m.periods}` : m.kind;
}

/** The quote for `method` among an order's quotes. */
export function quoteFor(
  quotes: MethodQuote_Serialize[],
  method: PaymentMethod,
): MethodQuote_Serialize | null {
  return quotes.find((q) => methodKey(q.method) === methodKey(method)) ?? null;
}

/** Whether a breakdown says more than the order amount (a fee, periods or a surcharge). */
export function hasExtras(q: MethodQuote_Serialize): boolean {
  return q.installments !== null || q.surcharge.minor > 0;
}
