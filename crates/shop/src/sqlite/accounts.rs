//! Accounts in SQLite: sign-up, sessions and tokens, sign-in failures, per-address events,
//! real names, addresses and the annual quota.

use super::*;

const ACCOUNT_COLS: &str =
    "id, phone, password_hash, real_name, id_number, birth_date, verified_at, created_at";

fn account_row(r: &Row<'_>) -> rusqlite::Result<AccountRow> {
    let id: String = r.get(0)?;
    in_row("accounts", &id, r, || {
        Ok(AccountRow {
            phone: r.get(1)?,
            password_hash: r.get(2)?,
            real_name: r.get(3)?,
            id_number: r.get(4)?,
            birth_date: r.get::<_, Option<Day>>(5)?.map(|d| d.0),
            verified_at: r.get::<_, Option<Stamp>>(6)?.map(|t| t.0),
            created_at: r.get::<_, Stamp>(7)?.0,
            id: id.clone(),
        })
    })
}

fn address_row(r: &Row<'_>) -> rusqlite::Result<Address> {
    Ok(Address {
        id: r.get(0)?,
        fields: AddressInput {
            recipient: r.get(1)?,
            phone: r.get(2)?,
            province: r.get(3)?,
            city: r.get(4)?,
            district: r.get(5)?,
            street: r.get(6)?,
            postal_code: r.get(7)?,
            is_default: r.get::<_, i64>(8)? == 1,
        },
    })
}

const ADDRESS_COLS: &str = "id, recipient, phone, province, city, district, street, postal_code, is_default";

/// An account, read on `c` (a connection or an open transaction).
pub(super) fn account_in(c: &Connection, id: &str) -> StoreResult<Option<AccountRow>> {
    Ok(c.query_row(&format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = ?1"), [id], account_row)
        .optional()?)
}

/// One of an account's addresses (not deleted), read on `c`.
pub(super) fn address_in(c: &Connection, account_id: &str, id: &str) -> StoreResult<Option<Address>> {
    Ok(c.query_row(
        &format!("SELECT {ADDRESS_COLS} FROM addresses WHERE account_id = ?1 AND id = ?2 AND deleted = 0"),
        [account_id, id],
        address_row,
    )
    .optional()?)
}

fn insert_tokens(c: &Connection, family: &str, t: &TokenHashes) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO access_tokens (token_hash, family_id, expires_at) VALUES (?1, ?2, ?3)",
        params![t.access_hash, family, ts(t.access_expires)],
    )?;
    c.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, expires_at) VALUES (?1, ?2, ?3)",
        params![t.refresh_hash, family, ts(t.refresh_expires)],
    )?;
    Ok(())
}

fn revoke(c: &Connection, family: &str, why: &str, now: DateTime<Utc>) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE sessions SET revoked_at = ?1, revoke_why = ?2 WHERE family_id = ?3 AND revoked_at IS NULL",
        params![ts(now), why, family],
    )?;
    c.execute("DELETE FROM access_tokens WHERE family_id = ?1", [family])?;
    Ok(())
}

impl AccountStore for SqliteStore {
    fn create_account(
        &self,
        id: &str,
        phone: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<AccountRow> {
        self.with(|c| {
            let r = c.execute(
                "INSERT INTO accounts (id, phone, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![id, phone, password_hash, ts(now)],
            );
            match r {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Err(ApiError::conflict(
                        ErrorCode::AlreadyRegistered,
                        "this phone number is already registered",
                    ))
                }
                Err(e) => Err(e.into()),
                Ok(_) => Ok(AccountRow {
                    id: id.into(),
                    phone: phone.into(),
                    password_hash: password_hash.into(),
                    real_name: None,
                    id_number: None,
                    birth_date: None,
                    verified_at: None,
                    created_at: now,
                }),
            }
        })
    }

    fn account(&self, id: &str) -> StoreResult<Option<AccountRow>> {
        self.with(|c| account_in(c, id))
    }

    fn account_by_phone(&self, phone: &str) -> StoreResult<Option<AccountRow>> {
        self.with(|c| {
            Ok(c.query_row(
                &format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE phone = ?1"),
                [phone],
                account_row,
            )
            .optional()?)
        })
    }

    fn count_login_attempt(
        &self,
        phone: &str,
        since: DateTime<Utc>,
        limit: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.with(|c| {
            let tx = c.transaction()?;
            let failures: i64 = tx.query_row(
                "SELECT COUNT(*) FROM login_failures WHERE phone = ?1 AND at > ?2",
                params![phone, ts(since)],
                |r| r.get(0),
            )?;
            if failures >= limit {
                return Ok(false);
            }
            tx.execute("INSERT INTO login_failures (phone, at) VALUES (?1, ?2)", params![phone, ts(now)])?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn reserve_address_event(
        &self,
        event: AddressEvent,
        address: &str,
        since: DateTime<Utc>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<i64, DateTime<Utc>>> {
        self.with(|c| {
            let tx = c.transaction()?;
            let (seen, oldest): (i64, Option<Stamp>) = tx.query_row(
                "SELECT COUNT(*), MIN(at) FROM address_events WHERE kind = ?1 AND address = ?2 AND at > ?3",
                params![event.as_str(), address, ts(since)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if seen >= i64::from(limit) {
                return Ok(Err(oldest.map_or(now, |t| t.0)));
            }
            tx.execute(
                "INSERT INTO address_events (kind, address, at) VALUES (?1, ?2, ?3)",
                params![event.as_str(), address, ts(now)],
            )?;
            let id = tx.last_insert_rowid();
            tx.commit()?;
            Ok(Ok(id))
        })
    }

    fn forget_address_event(&self, id: i64) -> StoreResult<()> {
        self.with(|c| {
            c.execute("DELETE FROM address_events WHERE rowid = ?1", [id])?;
            Ok(())
        })
    }

    fn prune_address_events(&self, before: DateTime<Utc>) -> StoreResult<usize> {
        self.with(|c| Ok(c.execute("DELETE FROM address_events WHERE at < ?1", [ts(before)])?))
    }

    fn clear_login_failures(&self, phone: &str) -> StoreResult<()> {
        self.with(|c| {
            c.execute("DELETE FROM login_failures WHERE phone = ?1", [phone])?;
            Ok(())
        })
    }

    fn create_session(
        &self,
        family_id: &str,
        account_id: &str,
        t: &TokenHashes,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO sessions (family_id, account_id, created_at) VALUES (?1, ?2, ?3)",
                params![family_id, account_id, ts(now)],
            )?;
            insert_tokens(&tx, family_id, t)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn access_grant(&self, access_hash: &str) -> StoreResult<Option<AccessGrant>> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT s.account_id, s.family_id, a.expires_at FROM access_tokens a JOIN sessions s ON s.family_id = a.family_id
                 WHERE a.token_hash = ?1 AND s.revoked_at IS NULL",
                [access_hash],
                |r| {
                    let family_id: String = r.get(1)?;
                    in_row("access_tokens", &family_id, r, || {
                        Ok(AccessGrant {
                            account_id: r.get(0)?,
                            expires_at: r.get::<_, Stamp>(2)?.0,
                            family_id: family_id.clone(),
                        })
                    })
                },
            )
            .optional()?)
        })
    }

    fn refresh(&self, refresh_hash: &str, new: &TokenHashes, now: DateTime<Utc>) -> StoreResult<Refreshed> {
        self.with(|c| {
            let tx = c.transaction()?;
            type RefreshRow = (String, Stamp, Option<String>, Option<String>, String);
            let row: Option<RefreshRow> = tx
                .query_row(
                    "SELECT r.family_id, r.expires_at, r.used_at, s.revoked_at, s.account_id
                     FROM refresh_tokens r JOIN sessions s ON s.family_id = r.family_id WHERE r.token_hash = ?1",
                    [refresh_hash],
                    |r| {
                        let family: String = r.get(0)?;
                        in_row("refresh_tokens", &family, r, || Ok((family.clone(), r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                    },
                )
                .optional()?;
            let result = match row {
                None => Refreshed::Invalid,
                Some((_, _, _, Some(_), _)) => Refreshed::Invalid,
                Some((family, _, Some(_), None, _)) => {
                    // A rotated token came back: someone else has a copy. End the whole session.
                    revoke(&tx, &family, "refresh token reused", now)?;
                    Refreshed::Reused
                }
                Some((_, exp, None, None, _)) if exp.0 <= now => Refreshed::Invalid,
                Some((family, _, None, None, account_id)) => {
                    tx.execute("UPDATE refresh_tokens SET used_at = ?1 WHERE token_hash = ?2", params![ts(now), refresh_hash])?;
                    tx.execute("DELETE FROM access_tokens WHERE family_id = ?1", [&family])?;
                    insert_tokens(&tx, &family, new)?;
                    Refreshed::Rotated { account_id }
                }
            };
            tx.commit()?;
            Ok(result)
        })
    }

    fn revoke_family(&self, family_id: &str, why: &str, now: DateTime<Utc>) -> StoreResult<()> {
        self.with(|c| Ok(revoke(c, family_id, why, now)?))
    }

    fn revoke_all(&self, account_id: &str, now: DateTime<Utc>) -> StoreResult<usize> {
        self.with(|c| {
            let tx = c.transaction()?;
            let families: Vec<String> = tx
                .prepare("SELECT family_id FROM sessions WHERE account_id = ?1 AND revoked_at IS NULL")?
                .query_map([account_id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for f in &families {
                revoke(&tx, f, "signed out everywhere", now)?;
            }
            tx.commit()?;
            Ok(families.len())
        })
    }

    fn set_real_name(
        &self,
        account_id: &str,
        name: &str,
        id_number: &str,
        birth: NaiveDate,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "UPDATE accounts SET real_name = ?1, id_number = ?2, birth_date = ?3, verified_at = ?4 WHERE id = ?5",
                params![name, id_number, birth.format("%Y-%m-%d").to_string(), ts(now), account_id],
            )?;
            Ok(())
        })
    }

    fn addresses(&self, account_id: &str) -> StoreResult<Vec<Address>> {
        self.with(|c| {
            Ok(c.prepare(&format!(
                "SELECT {ADDRESS_COLS} FROM addresses WHERE account_id = ?1 AND deleted = 0 ORDER BY is_default DESC, created_at"
            ))?
            .query_map([account_id], address_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    fn address(&self, account_id: &str, id: &str) -> StoreResult<Option<Address>> {
        self.with(|c| address_in(c, account_id, id))
    }

    fn save_address(
        &self,
        account_id: &str,
        id: &str,
        a: &AddressInput,
        now: DateTime<Utc>,
    ) -> StoreResult<Address> {
        self.with(|c| {
            let tx = c.transaction()?;
            let count: i64 =
                tx.query_row("SELECT COUNT(*) FROM addresses WHERE account_id = ?1 AND deleted = 0", [account_id], |r| r.get(0))?;
            let make_default = a.is_default || count == 0;
            if make_default {
                tx.execute("UPDATE addresses SET is_default = 0 WHERE account_id = ?1", [account_id])?;
            }
            tx.execute(
                "INSERT INTO addresses (id, account_id, recipient, phone, province, city, district, street, postal_code, is_default, created_at)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)
                 ON CONFLICT (id) DO UPDATE SET recipient = excluded.recipient, phone = excluded.phone, province = excluded.province,
                 city = excluded.city, district = excluded.district, street = excluded.street, postal_code = excluded.postal_code,
                 is_default = excluded.is_default WHERE addresses.account_id = excluded.account_id",
                params![
                    id,
                    account_id,
                    a.recipient,
                    a.phone,
                    a.province,
                    a.city,
                    a.district,
                    a.street,
                    a.postal_code,
                    i64::from(make_default),
                    ts(now)
                ],
            )?;
            tx.commit()?;
            Ok(Address { id: id.into(), fields: AddressInput { is_default: make_default, ..a.clone() } })
        })
    }

    fn delete_address(&self, account_id: &str, id: &str) -> StoreResult<bool> {
        self.with(|c| {
            Ok(c.execute("UPDATE addresses SET deleted = 1, is_default = 0 WHERE account_id = ?1 AND id = ?2 AND deleted = 0", [account_id, id])?
                > 0)
        })
    }

    fn quota_usage(&self, id_number: &str, year: i32) -> StoreResult<(i64, i64)> {
        self.with(|c| quota_usage(c, id_number, year))
    }
}
