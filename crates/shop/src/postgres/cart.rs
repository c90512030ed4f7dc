//! A buyer's cart in PostgreSQL.

use super::products::get;
use super::*;

impl CartStore for PgStore {
    fn cart(&self, account_id: &str) -> StoreResult<Vec<(ProductRow, i64)>> {
        self.with(|tx| cart_in(tx, account_id))
    }

    fn set_cart_quantity(
        &self,
        account_id: &str,
        product_id: &str,
        quantity: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.with(|tx| {
            if quantity <= 0 {
                tx.execute(
                    "DELETE FROM cart_items WHERE account_id = $1 AND product_id = $2",
                    &[&account_id, &product_id],
                )?;
            } else {
                tx.execute(
                    "INSERT INTO cart_items (account_id, product_id, quantity, added_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (account_id, product_id) DO UPDATE SET quantity = excluded.quantity",
                    &[&account_id, &product_id, &quantity, &ts(now)],
                )?;
            }
            Ok(())
        })
    }

    fn clear_cart(&self, account_id: &str) -> StoreResult<()> {
        self.with(|tx| {
            tx.execute("DELETE FROM cart_items WHERE account_id = $1", &[&account_id])?;
            Ok(())
        })
    }
}

/// An account's cart (products still in the catalog, in the order they were added), read in `tx`.
pub(super) fn cart_in(tx: &mut Tx<'_>, account_id: &str) -> R<Vec<(ProductRow, i64)>> {
    let items: Vec<(String, i64)> = tx
        .query(
            "SELECT product_id, quantity FROM cart_items WHERE account_id = $1 ORDER BY added_at, product_id",
            &[&account_id],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<R<_>>()?;
    let mut out = Vec::with_capacity(items.len());
    for (pid, q) in items {
        if let Some(p) = get(tx, &pid)? {
            out.push((p, q));
        }
    }
    Ok(out)
}
