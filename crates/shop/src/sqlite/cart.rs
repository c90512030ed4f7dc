//! A buyer's cart in SQLite.

use super::products::get;
use super::*;

impl CartStore for SqliteStore {
    fn cart(&self, account_id: &str) -> StoreResult<Vec<(ProductRow, i64)>> {
        self.with(|c| cart_in(c, account_id))
    }

    fn set_cart_quantity(
        &self,
        account_id: &str,
        product_id: &str,
        quantity: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.with(|c| {
            if quantity <= 0 {
                c.execute("DELETE FROM cart_items WHERE account_id = ?1 AND product_id = ?2", [account_id, product_id])?;
            } else {
                c.execute(
                    "INSERT INTO cart_items (account_id, product_id, quantity, added_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (account_id, product_id) DO UPDATE SET quantity = excluded.quantity",
                    params![account_id, product_id, quantity, ts(now)],
                )?;
            }
            Ok(())
        })
    }

    fn clear_cart(&self, account_id: &str) -> StoreResult<()> {
        self.with(|c| {
            c.execute("DELETE FROM cart_items WHERE account_id = ?1", [account_id])?;
            Ok(())
        })
    }
}

/// An account's cart (products still in the catalog, in the order they were added), read on `c`.
pub(super) fn cart_in(c: &Connection, account_id: &str) -> StoreResult<Vec<(ProductRow, i64)>> {
    let items: Vec<(String, i64)> = c
        .prepare(
            "SELECT product_id, quantity FROM cart_items WHERE account_id = ?1 ORDER BY added_at, product_id",
        )?
        .query_map([account_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(items.len());
    for (pid, q) in items {
        if let Some(p) = get(c, &pid)? {
            out.push((p, q));
        }
    }
    Ok(out)
}
