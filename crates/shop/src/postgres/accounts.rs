//! Accounts in PostgreSQL: sign-up, sessions and tokens, sign-in failures, per-address events
//! (shared by every instance on the database), real names, addresses and the annual quota.

use super::*;

const ACCOUNT_COLS: &str =
    "id, phone, password_hash, real_name, id_number, birth_date, verified_at, created_at";

fn account_row(r: &Row) -> R<AccountRow> {
    let at = At::keyed(r, "accounts", 0)?;
    Ok(AccountRow {
        phone: at.get(1)?,
        password_hash: at.get(2)?,
        real_name: at.get(3)?,
        id_number: at.get(4)?,
        birth_date: at.get(5)?,
        verified_at: at.get(6)?,
        created_at: at.get(7)?,
        id: at.key().to_owned(),
    })
}

fn address_row(r: &Row) -> R<Address> {
    let at = At::keyed(r, "addresses", 0)?;
    Ok(Address {
        id: at.key().to_owned(),
        fields: AddressInput {
            recipient: at.get(1)?,
            phone: at.get(2)?,
            province: at.get(3)?,
            city: at.get(4)?,
            district: at.get(5)?,
            street: at.get(6)?,
            postal_code: at.get(7)?,
            is_default: at.get(8)?,
        },
    })
}

const ADDRESS_COLS: &str = "id, recipient, phone, province, city, district, street, postal_code, is_default";

pub(super) fn account_in(tx: &mut Tx<'_>, id: &str) -> R<Option<AccountRow>> {
    tx.query_opt(&format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1"), &[&id])?
        .as_ref()
        .map(account_row)
        .transpose()
}

pub(super) fn address_in(tx: &mut Tx<'_>, account_id: &str, id: &str) -> R<Option<Address>> {
    tx.query_opt(
        &format!("SELECT {ADDRESS_COLS} FROM addresses WHERE account_id = $1 AND id = $2 AND NOT deleted"),
        &[&account_id, &id],
    )?
    .as_ref()
    .map(address_row)
    .transpose()
}

fn insert_tokens(tx: &mut Tx<'_>, family: &str, t: &TokenHashes) -> R<()> {
    tx.execute(
        "INSERT INTO access_tokens (token_hash, family_id, expires_at) VALUES ($1, $2, $3)",
        &[&t.access_hash, &family, &ts(t.access_expires)],
    )?;
    tx.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, expires_at) VALUES ($1, $2, $3)",
        &[&t.refresh_hash, &family, &ts(t.refresh_expires)],
    )?;
    Ok(())
}

fn revoke(tx: &mut Tx<'_>, family: &str, why: &str, now: DateTime<Utc>) -> R<()> {
    tx.execute(
        "UPDATE sessions SET revoked_at = $1, revoke_why = $2 WHERE family_id = $3 AND revoked_at IS NULL",
        &[&ts(now), &why, &family],
    )?;
    tx.execute("DELETE FROM access_tokens WHERE family_id = $1", &[&family])?;
    Ok(())
}

impl AccountStore for PgStore {
    fn create_account(
        &self,
        id: &str,
        phone: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<AccountRow> {
        self.with(|tx| {
            let r = tx.execute(
                "INSERT INTO accounts (id, phone, password_hash, created_at) VALUES ($1, $2, $3, $4)",
                &[&id, &phone, &password_hash, &ts(now)],
            );
            match r {
                Err(e) if is_unique_violation(&e) => Err(Fail::Api(ApiError::conflict(
                    ErrorCode::AlreadyRegistered,
                    "this phone number is already registered",
                ))),
                Err(e) => Err(e.into()),
                Ok(_) => Ok(AccountRow {
                    id: id.into(),
                    phone: phone.into(),
                    password_hash: password_hash.into(),
                    real_name: None,
                    id_number: None,
                    birth_date: None,
                    verified_at: None,
                    created_at: ts(now),
                }),
            }
        })
    }

    fn account(&self, id: &str) -> StoreResult<Option<AccountRow>> {
        self.with(|tx| account_in(tx, id))
    }

    fn account_by_phone(&self, phone: &str) -> StoreResult<Option<AccountRow>> {
        self.with(|tx| {
            tx.query_opt(&format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE phone = $1"), &[&phone])?
                .as_ref()
                .map(account_row)
                .transpose()
        })
    }

    fn count_login_attempt(
        &self,
        phone: &str,
        since: DateTime<Utc>,
        limit: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.with(|tx| {
            let failures: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM login_failures WHERE phone = $1 AND at > $2",
                    &[&phone, &ts(since)],
                )?
                .try_get(0)?;
            if failures >= limit {
                return Ok(false);
            }
            tx.execute("INSERT INTO login_failures (phone, at) VALUES ($1, $2)", &[&phone, &ts(now)])?;
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
        self.with(|tx| {
            let row = tx.query_one(
                "SELECT COUNT(*), MIN(at) FROM address_events WHERE kind = $1 AND address = $2 AND at > $3",
                &[&event.as_str(), &address, &ts(since)],
            )?;
            let (seen, oldest): (i64, Option<DateTime<Utc>>) = (row.try_get(0)?, row.try_get(1)?);
            if seen >= i64::from(limit) {
                return Ok(Err(oldest.unwrap_or(now)));
            }
            let id: i64 = tx
                .query_one(
                    "INSERT INTO address_events (kind, address, at) VALUES ($1, $2, $3) RETURNING id",
                    &[&event.as_str(), &address, &ts(now)],
                )?
                .try_get(0)?;
            Ok(Ok(id))
        })
    }

    fn forget_address_event(&self, id: i64) -> StoreResult<()> {
        self.with(|tx| {
            tx.execute("DELETE FROM address_events WHERE id = $1", &[&id])?;
            Ok(())
        })
    }

    fn prune_address_events(&self, before: DateTime<Utc>) -> StoreResult<usize> {
        self.with(|tx| {
            let n = tx.execute("DELETE FROM address_events WHERE at < $1", &[&ts(before)])?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn clear_login_failures(&self, phone: &str) -> StoreResult<()> {
        self.with(|tx| {
            tx.execute("DELETE FROM login_failures WHERE phone = $1", &[&phone])?;
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
        self.with(|tx| {
            tx.execute(
                "INSERT INTO sessions (family_id, account_id, created_at) VALUES ($1, $2, $3)",
                &[&family_id, &account_id, &ts(now)],
            )?;
            insert_tokens(tx, family_id, t)
        })
    }

    fn access_grant(&self, access_hash: &str) -> StoreResult<Option<AccessGrant>> {
        self.with(|tx| {
            let row = tx.query_opt(
                "SELECT s.family_id, s.account_id, a.expires_at FROM access_tokens a JOIN sessions s ON s.family_id = a.family_id
                 WHERE a.token_hash = $1 AND s.revoked_at IS NULL",
                &[&access_hash],
            )?;
            let Some(r) = row else { return Ok(None) };
            let at = At::keyed(&r, "access_tokens", 0)?;
            Ok(Some(AccessGrant { account_id: at.get(1)?, expires_at: at.get(2)?, family_id: at.key().to_owned() }))
        })
    }

    fn refresh(&self, refresh_hash: &str, new: &TokenHashes, now: DateTime<Utc>) -> StoreResult<Refreshed> {
        self.with(|tx| {
            let row = tx.query_opt(
                "SELECT r.family_id, r.expires_at, r.used_at, s.revoked_at, s.account_id
                 FROM refresh_tokens r JOIN sessions s ON s.family_id = r.family_id WHERE r.token_hash = $1",
                &[&refresh_hash],
            )?;
            type RefreshRow = (String, DateTime<Utc>, Option<DateTime<Utc>>, Option<DateTime<Utc>>, String);
            let row: Option<RefreshRow> = match &row {
                None => None,
                Some(r) => {
                    let at = At::keyed(r, "refresh_tokens", 0)?;
                    Some((at.key().to_owned(), at.get(1)?, at.get(2)?, at.get(3)?, at.get(4)?))
                }
            };
            Ok(match row {
                None => Refreshed::Invalid,
                Some((_, _, _, Some(_), _)) => Refreshed::Invalid,
                Some((family, _, Some(_), None, _)) => {
                    // A rotated token came back: someone else has a copy. End the whole session.
                    revoke(tx, &family, "refresh token reused", now)?;
                    Refreshed::Reused
                }
                Some((_, exp, None, None, _)) if exp <= now => Refreshed::Invalid,
                Some((family, _, None, None, account_id)) => {
                    tx.execute(
                        "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2",
                        &[&ts(now), &refresh_hash],
                    )?;
                    tx.execute("DELETE FROM access_tokens WHERE family_id = $1", &[&family])?;
                    insert_tokens(tx, &family, new)?;
                    Refreshed::Rotated { account_id }
                }
            })
        })
    }

    fn revoke_family(&self, family_id: &str, why: &str, now: DateTime<Utc>) -> StoreResult<()> {
        self.with(|tx| revoke(tx, family_id, why, now))
    }

    fn revoke_all(&self, account_id: &str, now: DateTime<Utc>) -> StoreResult<usize> {
        self.with(|tx| {
            let families: Vec<String> = tx
                .query(
                    "SELECT family_id FROM sessions WHERE account_id = $1 AND revoked_at IS NULL",
                    &[&account_id],
                )?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            for f in &families {
                revoke(tx, f, "signed out everywhere", now)?;
            }
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
        self.with(|tx| {
            tx.execute(
                "UPDATE accounts SET real_name = $1, id_number = $2, birth_date = $3, verified_at = $4 WHERE id = $5",
                &[&name, &id_number, &birth, &ts(now), &account_id],
            )?;
            Ok(())
        })
    }

    fn addresses(&self, account_id: &str) -> StoreResult<Vec<Address>> {
        self.with(|tx| {
            tx.query(
                &format!(
                    "SELECT {ADDRESS_COLS} FROM addresses WHERE account_id = $1 AND NOT deleted ORDER BY is_default DESC, created_at"
                ),
                &[&account_id],
            )?
            .iter()
            .map(address_row)
            .collect()
        })
    }

    fn address(&self, account_id: &str, id: &str) -> StoreResult<Option<Address>> {
        self.with(|tx| address_in(tx, account_id, id))
    }

    fn save_address(
        &self,
        account_id: &str,
        id: &str,
        a: &AddressInput,
        now: DateTime<Utc>,
    ) -> StoreResult<Address> {
        self.with(|tx| {
            let count: i64 = tx
                .query_one("SELECT COUNT(*) FROM addresses WHERE account_id = $1 AND NOT deleted", &[&account_id])?
                .try_get(0)?;
            let make_default = a.is_default || count == 0;
            if make_default {
                tx.execute("UPDATE addresses SET is_default = FALSE WHERE account_id = $1", &[&account_id])?;
            }
            tx.execute(
                "INSERT INTO addresses (id, account_id, recipient, phone, province, city, district, street, postal_code, is_default, created_at)
                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)
                 ON CONFLICT (id) DO UPDATE SET recipient = excluded.recipient, phone = excluded.phone, province = excluded.province,
                 city = excluded.city, district = excluded.district, street = excluded.street, postal_code = excluded.postal_code,
                 is_default = excluded.is_default WHERE addresses.account_id = excluded.account_id",
                &[
                    &id,
                    &account_id,
                    &a.recipient,
                    &a.phone,
                    &a.province,
                    &a.city,
                    &a.district,
                    &a.street,
                    &a.postal_code,
                    &make_default,
                    &ts(now),
                ],
            )?;
            Ok(Address { id: id.into(), fields: AddressInput { is_default: make_default, ..a.clone() } })
        })
    }

    fn delete_address(&self, account_id: &str, id: &str) -> StoreResult<bool> {
        self.with(|tx| {
            Ok(tx.execute(
                "UPDATE addresses SET deleted = TRUE, is_default = FALSE WHERE account_id = $1 AND id = $2 AND NOT deleted",
                &[&account_id, &id],
            )? > 0)
        })
    }

    fn quota_usage(&self, id_number: &str, year: i32) -> StoreResult<(i64, i64)> {
        self.with(|tx| quota_usage(tx, id_number, year))
    }
}
