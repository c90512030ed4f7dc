//! Customs declarations of a paid trade (`alipay.trade.customs.declare`), with the identity check of
//! the declared buyer against the payer.

use haitao_alipay::api::CustomsDeclare;
use haitao_alipay::money::{Currency, Money};
use haitao_alipay::status::{Status, acq};
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};

use super::{Ctx, biz, invalid, store_err};
use crate::db::Cached as _;
use crate::model::{self, Trade, digits, ts};

pub fn customs_declare(ctx: &Ctx<'_>, d: &CustomsDeclare) -> Result<Value, Status> {
    check_request(d)?;
    let t = model::trade_by_no(ctx.conn, &ctx.app.app_id, &d.trade_no)
        .map_err(store_err)?
        .ok_or_else(|| biz(acq::TRADE_NOT_EXIST, "交易不存在"))?;
    if t.paid_at.is_none() {
        return Err(biz(acq::TRADE_STATUS_ERROR, "交易未支付"));
    }
    let amount = d.amount.to_money(Currency::Cny).map_err(|e| invalid(format!("amount: {e}")))?;
    if amount.minor() <= 0 || amount.minor() > t.cny_fen {
        return Err(invalid("报关金额不能超过支付金额"));
    }
    let (declare_no, identity) = record_declaration(ctx, d, &t, amount)?;
    ctx.event(
        "customs.declared",
        Some(&t),
        None,
        format!(
            "payment declared to {} ({}){}",
            d.customs_place,
            d.out_request_no,
            identity.map(|i| format!(", identity_check={i}")).unwrap_or_default()
        ),
        json!({"out_request_no": d.out_request_no, "identity_check": identity, "amount_fen": amount.minor()}),
    );
    let mut v = json!({
        "trade_no": t.trade_no,
        "alipay_declare_no": declare_no,
        "pay_code": "ALIPAY",
        "pay_transaction_id": t.trade_no,
        "total_amount": amount.minor().to_string(),
        "currency": "CNY",
        "ver_dept": "3",
    });
    if let (Some(i), Some(obj)) = (identity, v.as_object_mut()) {
        obj.insert("identity_check".into(), json!(i));
    }
    Ok(v)
}

/// Refuses a request whose `out_request_no`, merchant customs fields or split details are malformed.
fn check_request(d: &CustomsDeclare) -> Result<(), Status> {
    let ok_no = |s: &str| {
        (6..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if !ok_no(&d.out_request_no) {
        return Err(invalid("out_request_no 须为6-32位字母、数字、下划线或短横线"));
    }
    if d.merchant_customs_code.trim().is_empty()
        || d.merchant_customs_name.trim().is_empty()
        || d.customs_place.trim().is_empty()
    {
        return Err(invalid("merchant_customs_code、merchant_customs_name、customs_place 不能为空"));
    }
    if matches!(d.is_split.as_deref(), Some("T" | "t"))
        && d.sub_out_biz_no.as_deref().unwrap_or_default().is_empty()
    {
        return Err(invalid("拆单时 sub_out_biz_no 必填"));
    }
    Ok(())
}

/// Stores a declaration. A repeated `out_request_no` is pushed again with the new details under its
/// declare number; a new one gets a declare number and, when the buyer is declared, an identity
/// check. Returns the declare number and that identity check (`T` or `F`).
fn record_declaration(
    ctx: &Ctx<'_>,
    d: &CustomsDeclare,
    t: &Trade,
    amount: Money,
) -> Result<(String, Option<&'static str>), Status> {
    let existing: Option<String> = ctx
        .conn
        .cached_row(
            "SELECT alipay_declare_no FROM customs_declarations WHERE trade_no = ?1 AND out_request_no = ?2",
            [&t.trade_no, &d.out_request_no],
            |r| r.get(0),
        )
        .optional()
        .map_err(store_err)?;
    let (name, cert) = d.buyer_info.as_ref().map(|b| (b.buyer_name.clone(), b.buyer_cert_no.clone())).unzip();
    match existing {
        Some(no) => {
            ctx.conn
                .cached_exec(
                    "UPDATE customs_declarations SET pushes = pushes + 1, amount_fen = ?1, customs_place = ?2,
                     buyer_name = ?3, buyer_cert_no = ?4, updated_at = ?5 WHERE trade_no = ?6 AND out_request_no = ?7",
                    params![amount.minor(), d.customs_place, name, cert, ts(ctx.now), t.trade_no, d.out_request_no],
                )
                .map_err(store_err)?;
            Ok((no, None))
        }
        None => {
            let identity = identity_check(ctx, d, t)?;
            let no = format!(
                "{}{}",
                ctx.now.with_timezone(&haitao_alipay::time::shanghai()).format("%Y%m%d"),
                digits(16)
            );
            ctx.conn
                .cached_exec(
                    "INSERT INTO customs_declarations (trade_no, out_request_no, alipay_declare_no, customs_place, amount_fen,
                     buyer_name, buyer_cert_no, identity_check, created_at, updated_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?9)",
                    params![t.trade_no, d.out_request_no, no, d.customs_place, amount.minor(), name, cert, identity, ts(ctx.now)],
                )
                .map_err(store_err)?;
            Ok((no, identity))
        }
    }
}

/// Whether the declared buyer is the payer (`T`) or not (`F`): same name and ID number. `None` when
/// either is unknown.
fn identity_check(ctx: &Ctx<'_>, d: &CustomsDeclare, t: &Trade) -> Result<Option<&'static str>, Status> {
    let payer =
        t.buyer_id.as_deref().map(|b| model::buyer(ctx.conn, b)).transpose().map_err(store_err)?.flatten();
    Ok(match (&d.buyer_info, &payer) {
        (Some(info), Some(p)) => {
            let same = info.buyer_name.trim() == p.real_name
                && info.buyer_cert_no.trim().eq_ignore_ascii_case(&p.id_number);
            Some(if same { "T" } else { "F" })
        }
        _ => None,
    })
}
