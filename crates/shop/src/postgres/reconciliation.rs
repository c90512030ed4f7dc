//! The daily reconciliation in PostgreSQL: the books a bill is compared with, and each day's result.
//! Two instances reconciling the same day write the same result; the second replaces the first.

use std::collections::BTreeMap;

use super::*;
use haitao_shop_api::reconciliation::{Difference, Reconciliation};

const PAYMENT_COLS: &str = "out_trade_no, status, amount_fen, gateway_paid_at";
const REFUND_COLS: &str = "a.out_trade_no, r.out_request_no, r.status, r.amount_fen, r.gateway_refunded_at";

fn payment_row(r: &Row) -> R<BookPayment> {
    let at = At::keyed(r, "payment_attempts", 0)?;
    Ok(BookPayment {
        status: at.code(1)?,
        amount: cny(at.get(2)?),
        gateway_paid_at: at.get(3)?,
        out_trade_no: at.key().to_owned(),
    })
}

fn refund_row(r: &Row) -> R<BookRefund> {
    let at = At::keyed(r, "refunds", 1)?;
    Ok(BookRefund {
        out_trade_no: at.get(0)?,
        status: at.code(2)?,
        amount: cny(at.get(3)?),
        gateway_refunded_at: at.get(4)?,
        out_request_no: at.key().to_owned(),
    })
}

fn header(tx: &mut Tx<'_>, day: NaiveDate) -> R<Option<Reconciliation>> {
    let row = tx.query_opt(
        "SELECT ran_at, bill_file, payments, refunds, income_fen, refunded_fen FROM reconciliations WHERE day = $1",
        &[&day],
    )?;
    let Some(r) = row else { return Ok(None) };
    let at = At::new(&r, "reconciliations", day.to_string());
    let mut rec = Reconciliation {
        day,
        ran_at: at.get(0)?,
        bill_file: at.get(1)?,
        payments: at.int(2)?,
        refunds: at.int(3)?,
        income: cny(at.get(4)?),
        refunded: cny(at.get(5)?),
        differences: Vec::new(),
    };
    rec.differences = tx
        .query(
            "SELECT kind, out_trade_no, out_request_no, books_fen, bill_fen, seq FROM reconciliation_differences
             WHERE day = $1 ORDER BY seq",
            &[&day],
        )?
        .iter()
        .map(|r| {
            let seq: i64 = r.try_get(5)?;
            let at = At::new(r, "reconciliation_differences", format!("{day} #{seq}"));
            Ok(Difference {
                kind: at.code(0)?,
                out_trade_no: at.get(1)?,
                out_request_no: at.get(2)?,
                books: at.get::<Option<i64>>(3)?.map(cny),
                bill: at.get::<Option<i64>>(4)?.map(cny),
            })
        })
        .collect::<R<_>>()?;
    Ok(Some(rec))
}

impl ReconciliationStore for PgStore {
    fn books(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        out_trade_nos: &[String],
        out_request_nos: &[String],
    ) -> StoreResult<Books> {
        self.with(|tx| {
            let mut payments = BTreeMap::new();
            let by_out = format!("SELECT {PAYMENT_COLS} FROM payment_attempts WHERE out_trade_no = ANY($1)");
            for r in tx.query(&by_out, &[&out_trade_nos])? {
                let p = payment_row(&r)?;
                payments.insert(p.out_trade_no.clone(), p);
            }
            let in_window = format!(
                "SELECT {PAYMENT_COLS} FROM payment_attempts
                 WHERE gateway_paid_at >= $1 AND gateway_paid_at < $2 AND status = {}",
                lit(AttemptStatus::Paid)
            );
            for r in tx.query(&in_window, &[&from, &to])? {
                let p = payment_row(&r)?;
                payments.insert(p.out_trade_no.clone(), p);
            }
            let mut refunds = BTreeMap::new();
            let by_request = format!(
                "SELECT {REFUND_COLS} FROM refunds r JOIN payment_attempts a ON a.id = r.attempt_id
                 WHERE r.out_request_no = ANY($1)"
            );
            for r in tx.query(&by_request, &[&out_request_nos])? {
                let r = refund_row(&r)?;
                refunds.insert(r.out_request_no.clone(), r);
            }
            let in_window = format!(
                "SELECT {REFUND_COLS} FROM refunds r JOIN payment_attempts a ON a.id = r.attempt_id
                 WHERE r.gateway_refunded_at >= $1 AND r.gateway_refunded_at < $2 AND r.status = {}",
                lit(RefundStatus::Succeeded)
            );
            for r in tx.query(&in_window, &[&from, &to])? {
                let r = refund_row(&r)?;
                refunds.insert(r.out_request_no.clone(), r);
            }
            Ok(Books { payments: payments.into_values().collect(), refunds: refunds.into_values().collect() })
        })
    }

    fn save_reconciliation(&self, r: &Reconciliation) -> StoreResult<()> {
        let (income, refunded) =
            (books_fen(r.income, "the bill's income")?, books_fen(r.refunded, "the bill's refunds")?);
        let mut rows = Vec::with_capacity(r.differences.len());
        for d in &r.differences {
            rows.push((
                d.kind.as_str(),
                d.out_trade_no.as_str(),
                d.out_request_no.as_deref(),
                d.books.map(|m| books_fen(m, "an amount in the books")).transpose()?,
                d.bill.map(|m| books_fen(m, "an amount in the bill")).transpose()?,
            ));
        }
        self.with(|tx| {
            tx.execute("DELETE FROM reconciliations WHERE day = $1", &[&r.day])?;
            tx.execute("DELETE FROM reconciliation_failures WHERE day = $1", &[&r.day])?;
            tx.execute(
                "INSERT INTO reconciliations (day, ran_at, bill_file, payments, refunds, income_fen, refunded_fen)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&r.day, &ts(r.ran_at), &r.bill_file, &i64::from(r.payments), &i64::from(r.refunds), &income, &refunded],
            )?;
            let ins = "INSERT INTO reconciliation_differences (day, seq, kind, out_trade_no, out_request_no, books_fen, bill_fen)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)";
            for (seq, (kind, out, request, books, bill)) in (0_i64..).zip(&rows) {
                tx.execute(ins, &[&r.day, &seq, kind, out, request, books, bill])?;
            }
            Ok(())
        })
    }

    fn reconciliation(&self, day: NaiveDate) -> StoreResult<Option<Reconciliation>> {
        self.with(|tx| header(tx, day))
    }

    fn reconciliations(&self, limit: u32) -> StoreResult<Vec<Reconciliation>> {
        self.with(|tx| {
            let days: Vec<NaiveDate> = tx
                .query("SELECT day FROM reconciliations ORDER BY day DESC LIMIT $1", &[&i64::from(limit)])?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            let mut out = Vec::with_capacity(days.len());
            for d in days {
                out.extend(header(tx, d)?);
            }
            Ok(out)
        })
    }

    fn reconciliation_days(
        &self,
        from: NaiveDate,
    ) -> StoreResult<BTreeMap<NaiveDate, crate::reconcile::DayState>> {
        self.with(|tx| {
            let mut out: BTreeMap<NaiveDate, crate::reconcile::DayState> = BTreeMap::new();
            for r in tx.query(
                "SELECT r.day, r.ran_at, (SELECT COUNT(*) FROM reconciliation_differences d WHERE d.day = r.day)
                 FROM reconciliations r WHERE r.day >= $1",
                &[&from],
            )? {
                let at = At::new(&r, "reconciliations", "");
                let (d, ran, n): (NaiveDate, DateTime<Utc>, usize) = (at.get(0)?, at.get(1)?, at.int(2)?);
                out.entry(d).or_default().reconciled = Some((ran, n));
            }
            for r in tx.query("SELECT day, tried_at, tries FROM reconciliation_failures WHERE day >= $1", &[&from])? {
                let at = At::new(&r, "reconciliation_failures", "");
                let (d, tried, tries): (NaiveDate, DateTime<Utc>, u32) = (at.get(0)?, at.get(1)?, at.int(2)?);
                out.entry(d).or_default().failed = Some((tried, tries));
            }
            Ok(out)
        })
    }

    fn reconciliation_failed(&self, day: NaiveDate, error: &str, now: DateTime<Utc>) -> StoreResult<()> {
        self.with(|tx| {
            tx.execute(
                "INSERT INTO reconciliation_failures (day, tries, last_error, tried_at) VALUES ($1, 1, $2, $3)
                 ON CONFLICT (day) DO UPDATE SET tries = reconciliation_failures.tries + 1, last_error = excluded.last_error,
                 tried_at = excluded.tried_at",
                &[&day, &error, &ts(now)],
            )?;
            Ok(())
        })
    }

    fn failing_days(&self) -> StoreResult<Vec<FailedDay>> {
        self.with(|tx| {
            tx.query(
                "SELECT f.day, f.tries, f.last_error, f.tried_at FROM reconciliation_failures f
                 WHERE NOT EXISTS (SELECT 1 FROM reconciliations r WHERE r.day = f.day) ORDER BY f.day",
                &[],
            )?
            .iter()
            .map(|r| {
                let day: NaiveDate = r.try_get(0)?;
                let at = At::new(r, "reconciliation_failures", day.to_string());
                Ok(FailedDay { day, tries: at.int(1)?, last_error: at.get(2)?, tried_at: at.get(3)? })
            })
            .collect()
        })
    }
}
