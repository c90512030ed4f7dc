//! E-invoices: a PDF per paid order with its tax lines. Cross-border retail imports carry no domestic
//! VAT invoice; this receipt lists what was bought and the cross-border composite tax the platform
//! withheld. Chinese text is drawn with an embedded subset of Droid Sans Fallback (Apache 2.0; see
//! assets/fonts/README.md), as a Type 0 font with a ToUnicode map so the text can be copied.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use haitao_alipay::money::Money;
use haitao_shop_api::orders::{FeePayer, MethodQuote, Order, PaymentMethod};
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

use crate::api::P;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::state::Shop;

static FONT: &[u8] = include_bytes!("../assets/fonts/HaitaoInvoiceSans.ttf");

/// Integer points to PDF units without float arithmetic.
fn pt(v: i32) -> f32 {
    f32::from(i16::try_from(v).unwrap_or(0))
}

/// Text laid out with the embedded font: glyph ids, widths, and which characters they stand for.
struct Face<'a> {
    face: ttf_parser::Face<'a>,
    upem: i32,
    used: BTreeMap<u16, char>,
}

impl<'a> Face<'a> {
    fn new(data: &'a [u8]) -> Result<Self, ApiError> {
        let face = ttf_parser::Face::parse(data, 0).map_err(ApiError::internal)?;
        let upem = i32::from(face.units_per_em());
        Ok(Face { face, upem, used: BTreeMap::new() })
    }

    fn glyph(&mut self, c: char) -> u16 {
        let g = self.face.glyph_index(c).map(|g| g.0).unwrap_or(0);
        if g != 0 {
            self.used.entry(g).or_insert(c);
        }
        g
    }

    fn advance(&self, g: u16) -> i32 {
        i32::from(self.face.glyph_hor_advance(ttf_parser::GlyphId(g)).unwrap_or(0))
    }

    /// Width of `text` at `size` points, in thousandths of a point.
    fn width_milli(&mut self, text: &str, size: i32) -> i32 {
        let glyphs: Vec<u16> = text.chars().map(|c| self.glyph(c)).collect();
        let total: i32 = glyphs.into_iter().map(|g| self.advance(g)).sum();
        total * size * 1000 / self.upem.max(1)
    }

    /// Cuts `text` to fit `max` points, ending with "…" when cut.
    fn fit(&mut self, text: &str, size: i32, max: i32) -> String {
        if self.width_milli(text, size) <= max * 1000 {
            return text.to_owned();
        }
        let mut out = String::new();
        for c in text.chars() {
            let candidate = format!("{out}{c}…");
            if self.width_milli(&candidate, size) > max * 1000 {
                break;
            }
            out.push(c);
        }
        out.push('…');
        out
    }

    fn encode(&mut self, text: &str) -> Vec<u8> {
        text.chars().flat_map(|c| self.glyph(c).to_be_bytes()).collect()
    }
}

struct Page<'f, 'a> {
    content: Content,
    face: &'f mut Face<'a>,
}

impl Page<'_, '_> {
    fn text(&mut self, x: i32, y: i32, size: i32, s: &str) {
        let bytes = self.face.encode(s);
        self.content.begin_text();
        self.content.set_font(Name(b"F1"), pt(size));
        self.content.next_line(pt(x), pt(y));
        self.content.show(Str(&bytes));
        self.content.end_text();
    }

    /// Right-aligned at `right`.
    fn text_right(&mut self, right: i32, y: i32, size: i32, s: &str) {
        let w = self.face.width_milli(s, size) / 1000;
        self.text(right - w, y, size, s);
    }

    fn rule(&mut self, x1: i32, x2: i32, y: i32) {
        self.content.set_line_width(0.5);
        self.content.move_to(pt(x1), pt(y));
        self.content.line_to(pt(x2), pt(y));
        self.content.stroke();
    }
}

fn yuan(m: Money) -> String {
    format!("¥{}", m.to_decimal_string())
}

fn percent(ppm: i64) -> String {
    format!("{}.{:02}%", ppm / 10_000, (ppm % 10_000 + 50) / 100)
}

/// The receipt's lines on how the order was paid, beyond its amount: the method and, for Huabei
/// installments or an international card, the fee (and who pays it), the periods and what the
/// buyer pays in all, as the app shows them.
pub fn payment_rows(quote: &MethodQuote) -> Vec<(String, String)> {
    let method = match quote.method {
        PaymentMethod::Balance => "余额 Balance".to_owned(),
        PaymentMethod::BankCard => "银行卡 Bank card".to_owned(),
        PaymentMethod::Huabei => "花呗 Huabei".to_owned(),
        PaymentMethod::HuabeiInstallments { periods } => {
            format!("花呗分期 {periods} 期 Huabei in {periods} installments")
        }
        PaymentMethod::InternationalCard => "境外卡 International card".to_owned(),
    };
    let mut rows = vec![("支付方式 Paid with".to_owned(), method)];
    if let Some(plan) = &quote.installments {
        let who = match plan.fee_payer {
            FeePayer::Buyer => "买家承担 paid by the buyer",
            FeePayer::Seller => "商家承担 paid by the shop",
        };
        rows.push((
            format!("分期手续费 Installment fee ({}, {who})", percent(plan.fee_rate_ppm)),
            yuan(plan.fee),
        ));
        let regular = plan.per_period.last().copied().unwrap_or(plan.fee);
        let periods = match plan.per_period.first() {
            Some(first) if first.minor() != regular.minor() => {
                format!("{} + {} × {}", yuan(*first), plan.per_period.len().saturating_sub(1), yuan(regular))
            }
            _ => format!("{} × {}", plan.per_period.len(), yuan(regular)),
        };
        rows.push(("每期还款 Per period".to_owned(), periods));
        let over_plan = plan.per_period.iter().map(|m| m.minor()).sum::<i64>();
        rows.push((
            "分期合计 Total over the plan".to_owned(),
            yuan(Money::from_minor(over_plan, quote.order_total.currency())),
        ));
    }
    if quote.surcharge.minor() > 0 {
        rows.push((
            format!("境外卡服务费 International card fee ({})", percent(quote.surcharge_rate_ppm)),
            yuan(quote.surcharge),
        ));
        rows.push(("买家合计支付 Buyer paid in all".to_owned(), yuan(quote.buyer_pays)));
    }
    rows
}

/// Renders an order's e-invoice; `quote` is what its payment method cost (see [`payment_rows`]).
pub fn render(
    order: &Order,
    seller: &str,
    seller_code: &str,
    trade_no: Option<&str>,
    quote: Option<&MethodQuote>,
) -> Result<Vec<u8>, ApiError> {
    let mut face = Face::new(FONT)?;
    let mut page = Page { content: Content::new(), face: &mut face };
    let (left, right) = (40, 555);
    let mut y = 800;
    page.text(left, y, 16, "跨境电商零售进口 电子税费凭证");
    y -= 18;
    page.text(left, y, 9, "E-receipt for cross-border retail imports · Haitao 海淘");
    y -= 24;
    let local = |t: chrono::DateTime<chrono::Utc>| haitao_alipay::time::format_alipay(t);
    let rows = [
        ("销售方 Seller", format!("{seller}（海关编码 {seller_code}）")),
        ("订单号 Order", order.id.clone()),
        ("下单时间 Ordered (China time)", local(order.created_at)),
        ("支付宝交易号 Alipay trade", trade_no.unwrap_or("-").to_owned()),
        ("支付单申报号 Declaration", order.customs.declaration_no.clone().unwrap_or_else(|| "-".into())),
        ("订购人 Orderer", format!("{} {}", order.orderer.name, order.orderer.id_number_masked)),
        (
            "收货人 Recipient",
            format!(
                "{} {}{}{} {}",
                order.address.fields.recipient,
                order.address.fields.province,
                order.address.fields.city,
                order.address.fields.district,
                order.address.fields.street
            ),
        ),
    ];
    for (label, value) in rows {
        page.text(left, y, 9, label);
        let v = page.face.fit(&value, 9, right - 200);
        page.text(200, y, 9, &v);
        y -= 14;
    }
    y -= 8;
    page.rule(left, right, y + 10);
    let cols = [
        (left, "商品 Item"),
        (268, "数量"),
        (330, "单价"),
        (390, "人民币单价"),
        (440, "货值"),
        (480, "税率"),
        (515, "税额"),
        (555, "小计"),
    ];
    for (i, (x, h)) in cols.iter().enumerate() {
        if i == 0 {
            page.text(*x, y, 8, h);
        } else {
            page.text_right(*x, y, 8, h);
        }
    }
    y -= 6;
    page.rule(left, right, y);
    y -= 12;
    for l in &order.lines {
        let p = &l.pricing;
        let name = page.face.fit(&format!("{} / {}", l.name.zh, l.name.en), 8, 200);
        page.text(left, y, 8, &name);
        page.text_right(268, y, 8, &p.quantity.to_string());
        page.text_right(
            330,
            y,
            8,
            &format!("{} {}", p.unit_price.to_decimal_string(), p.unit_price.currency()),
        );
        page.text_right(390, y, 8, &yuan(p.unit_price_cny));
        page.text_right(440, y, 8, &yuan(p.goods_cny));
        page.text_right(480, y, 8, &percent(p.tax_rate_ppm));
        page.text_right(515, y, 8, &yuan(p.tax_cny));
        page.text_right(555, y, 8, &yuan(p.total_cny));
        y -= 13;
        if y < 160 {
            break;
        }
    }
    page.rule(left, right, y + 6);
    y -= 10;
    let t = &order.totals;
    for (label, value) in [
        ("货值合计 Goods", yuan(t.goods)),
        ("运费 Shipping", yuan(t.shipping)),
        ("跨境电商综合税（平台代扣代缴）Composite tax withheld", yuan(t.tax)),
        ("实付金额 Paid", yuan(t.total)),
        ("已退款 Refunded", yuan(order.refunded)),
    ] {
        page.text(300, y, 9, label);
        page.text_right(right, y, 9, &value);
        y -= 14;
    }
    for (label, value) in quote.map(payment_rows).unwrap_or_default() {
        let label = page.face.fit(&label, 9, right - 300 - 110);
        page.text(300, y, 9, &label);
        page.text_right(right, y, 9, &value);
        y -= 14;
    }
    y -= 10;
    page.text(
        left,
        y,
        8,
        "说明：跨境电商零售进口商品不开具国内增值税发票。本凭证列明平台代扣代缴的跨境电商综合税，",
    );
    y -= 11;
    page.text(
        left,
        y,
        8,
        "税额 = 完税价格 ×（增值税率 + 消费税率）/（1 − 消费税率）× 70%。清关记录可在“掌上海关”查询。",
    );
    y -= 11;
    page.text(left, y, 8, "Cross-border retail imports carry no domestic VAT invoice; this receipt shows the composite tax withheld.");
    let content = page.content.finish();

    // Fonts and document structure.
    let (catalog, tree, page_id, content_id) = (Ref::new(1), Ref::new(2), Ref::new(3), Ref::new(4));
    let (type0, cid, descriptor, file, cmap) =
        (Ref::new(5), Ref::new(6), Ref::new(7), Ref::new(8), Ref::new(9));
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids([page_id]).count(1);
    let mut p = pdf.page(page_id);
    p.media_box(Rect::new(0.0, 0.0, pt(595), pt(842)));
    p.parent(tree);
    p.contents(content_id);
    p.resources().fonts().pair(Name(b"F1"), type0);
    p.finish();
    pdf.stream(content_id, &content);

    let name = Name(b"HaitaoInvoiceSans");
    pdf.type0_font(type0)
        .base_font(name)
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid)
        .to_unicode(cmap);
    let info = SystemInfo { registry: Str(b"Adobe"), ordering: Str(b"Identity"), supplement: 0 };
    let mut c = pdf.cid_font(cid);
    c.subtype(CidFontType::Type2)
        .base_font(name)
        .system_info(info)
        .font_descriptor(descriptor)
        .default_width(pt(1000));
    c.cid_to_gid_map_predefined(Name(b"Identity"));
    {
        let mut w = c.widths();
        for g in face.used.keys() {
            let milli = face.advance(*g) * 1000 / face.upem.max(1);
            w.consecutive(*g, [pt(milli)]);
        }
    }
    c.finish();
    let f = &face.face;
    let scale = |v: i16| pt(i32::from(v) * 1000 / face.upem.max(1));
    let bbox = f.global_bounding_box();
    pdf.font_descriptor(descriptor)
        .name(name)
        .flags(FontFlags::NON_SYMBOLIC)
        .bbox(Rect::new(scale(bbox.x_min), scale(bbox.y_min), scale(bbox.x_max), scale(bbox.y_max)))
        .italic_angle(0.0)
        .ascent(scale(f.ascender()))
        .descent(scale(f.descender()))
        .cap_height(scale(f.capital_height().unwrap_or(f.ascender())))
        .stem_v(pt(80))
        .font_file2(file);
    let len = i32::try_from(FONT.len()).unwrap_or(i32::MAX);
    pdf.stream(file, FONT).pair(Name(b"Length1"), len);
    let mut map = UnicodeCmap::new(Name(b"Haitao-UCS"), info);
    for (g, ch) in &face.used {
        map.pair(*g, *ch);
    }
    pdf.cmap(cmap, &map.finish());
    Ok(pdf.finish())
}

#[utoipa::path(get, path = "/api/v1/orders/{id}/invoice.pdf", tag = "orders", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, content_type = "application/pdf", body = String), (status = 404, body = haitao_shop_api::error::Problem),
              (status = 409, body = haitao_shop_api::error::Problem)))]
pub async fn invoice(State(shop): State<Arc<Shop>>, a: Authed, P(id): P<String>) -> ApiResult<Response> {
    let aid = a.account_id.clone();
    let order = shop
        .blocking(move |s| s.order(Some(&aid), &id))
        .await?
        .ok_or_else(|| ApiError::not_found("order"))?;
    if !order.invoice_available {
        return Err(ApiError::conflict(
            haitao_shop_api::error::ErrorCode::InvalidState,
            "an invoice exists once the order is paid",
        ));
    }
    let trade_no = order.payment.as_ref().and_then(|p| p.trade_no.clone());
    let quote = order
        .payment
        .as_ref()
        .map(|p| crate::pricing::quote_method(&shop.pricing, order.totals.total, p.method))
        .transpose()
        .map_err(ApiError::internal)?;
    let customs = shop.customs.clone();
    let id = order.id.clone();
    let bytes = tokio::task::spawn_blocking(move || {
        render(
            &order,
            &customs.merchant_customs_name,
            &customs.merchant_customs_code,
            trade_no.as_deref(),
            quote.as_ref(),
        )
    })
    .await
    .map_err(ApiError::internal)??;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"haitao-invoice-{id}.pdf\"")),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::{PricingConfig, quote_method};
    use haitao_alipay::money::Currency;

    fn cny(minor: i64) -> Money {
        Money::from_minor(minor, Currency::Cny)
    }

    fn value<'a>(rows: &'a [(String, String)], label: &str) -> &'a str {
        rows.iter()
            .find(|(l, _)| l.contains(label))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{label}: {rows:?}"))
    }

    /// The receipt names the fee, the periods and the total over the plan, as the app does.
    #[test]
    fn the_receipt_shows_the_installment_plan_and_the_card_fee() {
        let cfg = PricingConfig::default();
        let q = quote_method(&cfg, cny(34_327), PaymentMethod::HuabeiInstallments { periods: 6 }).unwrap();
        let plan = q.installments.clone().unwrap();
        let rows = payment_rows(&q);
        assert_eq!(value(&rows, "Paid with"), "花呗分期 6 期 Huabei in 6 installments");
        assert_eq!(value(&rows, "Installment fee"), yuan(plan.fee));
        assert!(rows.iter().any(|(l, _)| l.contains(&percent(plan.fee_rate_ppm))), "{rows:?}");
        let over: i64 = plan.per_period.iter().map(|m| m.minor()).sum();
        assert_eq!(value(&rows, "Total over the plan"), yuan(cny(over)));
        if plan.fee_payer == FeePayer::Buyer {
            assert_eq!(over, q.buyer_pays.minor());
            assert_eq!(over, 34_327 + plan.fee.minor());
        }
        let per = value(&rows, "Per period");
        assert!(per.contains(&yuan(*plan.per_period.last().unwrap())), "{per}");

        let card = quote_method(&cfg, cny(34_327), PaymentMethod::InternationalCard).unwrap();
        assert!(card.surcharge.minor() > 0);
        let rows = payment_rows(&card);
        assert_eq!(value(&rows, "International card fee"), yuan(card.surcharge));
        assert_eq!(value(&rows, "Buyer paid in all"), yuan(card.buyer_pays));

        let balance = payment_rows(&quote_method(&cfg, cny(34_327), PaymentMethod::Balance).unwrap());
        assert_eq!(balance, vec![("支付方式 Paid with".to_owned(), "余额 Balance".to_owned())]);
    }
}
