//! The daily reconciliation in SQLite: the books a bill is compared with, and each day's result.

use std::collections::BTreeMap;

use super::*;
use haitao_shop_api::reconciliation::{Difference, DifferenceKind, Reconciliation};

const PAYMENT_COLS: &str = "out_trade_no, status, amount_fen, gateway_paid_at";
const REFUND_COLS: &str = "a.out_trade_no, r.out_request_no, r.status, r.amount_fen, r.gateway_refunded_at";

fn payment_row(r: &Row<'_>) -> rusqlite::Result<BookPayment> {
    let out: String = r.get(0)?;
    in_row("payment_attempts", &out, r, || {
        Ok(BookPayment {
            status: r.get(1)?,
            amount: cny(r.get(2)?),
            gateway_paid_at: r.get::<_, Option<Stamp>>(3)?.map(|s| s.0),
            out_trade_no: out.clone(),
        })
    })
}

fn refund_row(r: &Row<'_>) -> rusqlite::Result<BookRefund> {
    let request: String = r.get(1)?;
    in_row("refunds", &request, r, || {
        Ok(BookRefund {
            out_trade_no: r.get(0)?,
            status: r.get(2)?,
            amount: cny(r.get(3)?),
            gateway_refunded_at: r.get::<_, Option<Stamp>>(4)?.map(|s| s.0),
            out_request_no: request.clone(),
        })
    })
}

fn header(c: &Connection, day: NaiveDate) -> Result<Option<Reconciliation>, ApiError> {
    let row = c
        .query_row(
            "SELECT ran_at, bill_file, payments, refunds, income_fen, refunded_fen FROM reconciliations WHERE day = ?1",
            [day.format("%Y-%m-%d").to_string()],
            |r| {
                in_row("reconciliations", &day.to_string(), r, || {
                    Ok(Reconciliation {
                        day,
                        ran_at: r.get::<_, Stamp>(0)?.0,
                        bill_file: r.get(1)?,
                        payments: r.get(2)?,
                        refunds: r.get(3)?,
                        income: cny(r.get(4)?),
                        refunded: cny(r.get(5)?),
                        differences: Vec::new(),
                    })
                })
            },
        )
        .optional()?;
    let Some(mut rec) = row else { return Ok(None) };
    rec.differences = c
        .prepare_cached(
            "SELECT kind, out_trade_no, out_request_no, books_fen, bill_fen FROM reconciliation_differences
             WHERE day = ?1 ORDER BY seq",
        )?
        .query_map([day.format("%Y-%m-%d").to_string()], |r| {
            in_row("reconciliation_differences", &day.to_string(), r, || {
                Ok(Difference {
                    kind: r.get::<_, DifferenceKind>(0)?,
                    out_trade_no: r.get(1)?,
                    out_request_no: r.get(2)?,
                    books: r.get::<_, Option<i64>>(3)?.map(cny),
                    bill: r.get::<_, Option<i64>>(4)?.map(cny),
                })
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(Some(rec))
}

impl ReconciliationStore for SqliteStore {
    fn books(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        out_trade_nos: &[String],
        out_request_nos: &[String],
    ) -> StoreResult<Books> {
        self.with(|c| {
            let tx = c.transaction()?;
            let mut payments = BTreeMap::new();
            {
                let mut by_out = tx.prepare_cached(&format!(
                    "SELECT {PAYMENT_COLS} FROM payment_attempts WHERE out_trade_no = ?1"
                ))?;
                for out in out_trade_nos {
                    if let Some(p) = by_out.query_row([out], payment_row).optional()? {
                        payments.insert(p.out_trade_no.clone(), p);
                    }
                }
                let mut in_window = tx.prepare(&format!(
                    "SELECT {PAYMENT_COLS} FROM payment_attempts
                     WHERE gateway_paid_at >= ?1 AND gateway_paid_at < ?2 AND status = {}",
                    lit(AttemptStatus::Paid)
                ))?;
                for p in in_window.query_map([ts(from), ts(to)], payment_row)? {
                    let p = p?;
                    payments.insert(p.out_trade_no.clone(), p);
                }
            }
            let mut refunds = BTreeMap::new();
            {
                let mut by_request = tx.prepare_cached(&format!(
                    "SELECT {REFUND_COLS} FROM refunds r JOIN payment_attempts a ON a.id = r.attempt_id
                     WHERE r.out_request_no = ?1"
                ))?;
                for request in out_request_nos {
                    if let Some(r) = by_request.query_row([request], refund_row).optional()? {
                        refunds.insert(r.out_request_no.clone(), r);
                    }
                }
                let mut in_window = tx.prepare(&format!(
                    "SELECT {REFUND_COLS} FROM refunds r JOIN payment_attempts a ON a.id = r.attempt_id
                     WHERE r.gateway_refunded_at >= ?1 AND r.gateway_refunded_at < ?2 AND r.status = {}",
                    lit(RefundStatus::Succeeded)
                ))?;
                for r in in_window.query_map([ts(from), ts(to)], refund_row)? {
                    let r = r?;
                    refunds.insert(r.out_request_no.clone(), r);
                }
            }
            tx.commit()?;
            Ok(Books { payments: payments.into_values().collect(), refunds: refunds.into_values().collect() })
        })
    }

    fn save_reconciliation(&self, r: &Reconciliation) -> StoreResult<()> {
        let day = r.day.format("%Y-%m-%d").to_string();
        let (income, refunded) =
            (books_fen(r.income, "the bill's income")?, books_fen(r.refunded, "the bill's refunds")?);
        let mut rows = Vec::with_capacity(r.differences.len());
        for d in &r.differences {
            rows.push((
                d.kind,
                d.out_trade_no.as_str(),
                d.out_request_no.as_deref(),
                d.books.map(|m| books_fen(m, "an amount in the books")).transpose()?,
                d.bill.map(|m| books_fen(m, "an amount in the bill")).transpose()?,
            ));
        }
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM reconciliations WHERE day = ?1", [&day])?;
            tx.execute("DELETE FROM reconciliation_failures WHERE day = ?1", [&day])?;
            tx.execute(
                "INSERT INTO reconciliations (day, ran_at, bill_file, payments, refunds, income_fen, refunded_fen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![day, ts(r.ran_at), r.bill_file, r.payments, r.refunds, income, refunded],
            )?;
            {
                let mut ins = tx.prepare_cached(
                    "INSERT INTO reconciliation_differences (day, seq, kind, out_trade_no, out_request_no, books_fen, bill_fen)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for (seq, (kind, out, request, books, bill)) in (0_i64..).zip(rows) {
                    ins.execute(params![day, seq, kind, out, request, books, bill])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn reconciliation(&self, day: NaiveDate) -> StoreResult<Option<Reconciliation>> {
        self.with(|c| header(c, day))
    }

    fn reconciliations(&self, limit: u32) -> StoreResult<Vec<Reconciliation>> {
        self.with(|c| {
            let days: Vec<Day> = c
                .prepare("SELECT day FROM reconciliations ORDER BY day DESC LIMIT ?1")?
                .query_map([limit], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut out = Vec::with_capacity(days.len());
            for Day(d) in days {
                out.extend(header(c, d)?);
            }
            Ok(out)
        })
    }

    fn reconciliation_days(
        &self,
        from: NaiveDate,
    ) -> StoreResult<BTreeMap<NaiveDate, crate::reconcile::DayState>> {
        self.with(|c| {
            let from = from.format("%Y-%m-%d").to_string();
            let mut out: BTreeMap<NaiveDate, crate::reconcile::DayState> = BTreeMap::new();
            let done: Vec<(Day, Stamp, i64)> = c
                .prepare(
                    "SELECT r.day, r.ran_at, (SELECT COUNT(*) FROM reconciliation_differences d WHERE d.day = r.day)
                     FROM reconciliations r WHERE r.day >= ?1",
                )?
                .query_map([&from], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            for (Day(d), Stamp(at), n) in done {
                out.entry(d).or_default().reconciled = Some((at, usize::try_from(n).unwrap_or(usize::MAX)));
            }
            let failed: Vec<(Day, Stamp, u32)> = c
                .prepare("SELECT day, tried_at, tries FROM reconciliation_failures WHERE day >= ?1")?
                .query_map([&from], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            for (Day(d), Stamp(at), tries) in failed {
                out.entry(d).or_default().failed = Some((at, tries));
            }
            Ok(out)
        })
    }

    fn reconciliation_failed(&self, day: NaiveDate, error: &str, now: DateTime<Utc>) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO reconciliation_failures (day, tries, last_error, tried_at) VALUES (?1, 1, ?2, ?3)
                 ON CONFLICT (day) DO UPDATE SET tries = tries + 1, last_error = ?2, tried_at = ?3",
                params![day.format("%Y-%m-%d").to_string(), error, ts(now)],
            )?;
            Ok(())
        })
    }

    fn failing_days(&self) -> StoreResult<Vec<FailedDay>> {
        self.with(|c| {
            Ok(c.prepare(
                "SELECT f.day, f.tries, f.last_error, f.tried_at FROM reconciliation_failures f
                 WHERE NOT EXISTS (SELECT 1 FROM reconciliations r WHERE r.day = f.day) ORDER BY f.day",
            )?
            .query_map([], |r| {
                let day: String = r.get(0)?;
                in_row("reconciliation_failures", &day, r, || {
                    Ok(FailedDay {
                        day: r.get::<_, Day>(0)?.0,
                        tries: r.get(1)?,
                        last_error: r.get(2)?,
                        tried_at: r.get::<_, Stamp>(3)?.0,
                    })
                })
            })?
            .collect::<Result<_, _>>()?)
        })
    }
}
