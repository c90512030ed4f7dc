//! The daily trade bill (`alipay.data.dataservice.bill.downloadurl.query`, `bill_type=trade`): a
//! zip named `<account>_<yyyyMMdd>.csv.zip` holding `<account>_<yyyyMMdd>_业务明细.csv` and
//! `…_业务明细(汇总).csv`, GBK text with CRLF lines and GBK entry names (no UTF-8 flag), in the
//! layout merchants' reconciliation parsers expect: four `#` lines, the 25-column header with
//! full-width `（元）`, one row per payment (`交易`) and per refund (`退款`, negative amounts), the end
//! marker and the totals. The account is the merchant's 16-digit PID followed by `0156`.
//!
//! [`TradeBill::to_zip`] writes one (the sandbox), [`TradeBill::from_zip`] reads one back (the shop's
//! reconciliation), refusing a file whose totals do not add up.

use std::io::{Read as _, Write as _};

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::money::{Currency, Money};
use crate::time::shanghai;

const DETAIL_TITLE: &str = "#支付宝业务明细查询";
const SUMMARY_TITLE: &str = "#支付宝业务汇总查询";
const DETAIL_START: &str =
    "#-----------------------------------------业务明细列表----------------------------------------";
const DETAIL_END: &str =
    "#-----------------------------------------业务明细列表结束------------------------------------";
const SUMMARY_START: &str =
    "#-----------------------------------------业务汇总列表----------------------------------------";
const SUMMARY_END: &str =
    "#----------------------------------------业务汇总列表结束-------------------------------------";
const COLUMNS: [&str; 25] = [
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "商品名称",
    "创建时间",
    "完成时间",
    "门店编号",
    "门店名称",
    "操作员",
    "终端号",
    "对方账户",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝红包（元）",
    "集分宝（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "券核销金额（元）",
    "券名称",
    "商家红包消费金额（元）",
    "卡消费金额（元）",
    "退款批次号/请求号",
    "服务费（元）",
    "分润（元）",
    "备注",
];
const SUMMARY_COLUMNS: &str = "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,商家优惠（元）,卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）";

/// Why a bill could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillError {
    #[error("the bill is not a zip file: {0}")]
    Zip(String),
    #[error("the bill zip holds no 业务明细 file")]
    NoDetail,
    #[error("the bill's text is not GBK")]
    NotGbk,
    #[error("the bill has no {0}")]
    Missing(&'static str),
    #[error("line {line} of the bill: {reason}")]
    Row { line: usize, reason: String },
    #[error("the bill's totals do not add up: {0}")]
    Totals(String),
}

/// A row's business type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BillKind {
    /// `交易`: a payment.
    Payment,
    /// `退款`: a refund (negative amounts).
    Refund,
}

impl BillKind {
    fn text(self) -> &'static str {
        match self {
            BillKind::Payment => "交易",
            BillKind::Refund => "退款",
        }
    }
}

/// One row of `业务明细`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillRow {
    pub trade_no: String,
    pub out_trade_no: String,
    pub kind: BillKind,
    pub subject: String,
    /// When the trade was created.
    pub created_at: DateTime<Utc>,
    /// When the payment (or the refund) completed.
    pub finished_at: DateTime<Utc>,
    /// The buyer, masked as Alipay masks it (`*伟(zha***@example.com)`).
    pub counterparty: String,
    /// Signed: negative for refunds.
    pub order_amount: Money,
    /// Signed: what the merchant received (negative for refunds).
    pub merchant_received: Money,
    /// The refund's `out_request_no`.
    pub out_request_no: Option<String>,
    /// Alipay's fee, negative (a charge to the merchant).
    pub service_fee: Money,
    pub remark: String,
}

/// A day's (or a month's) trade bill of one merchant account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeBill {
    /// `<PID>0156`.
    pub account: String,
    /// Asia/Shanghai wall-clock bounds, start inclusive.
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
    pub rows: Vec<BillRow>,
    pub exported_at: DateTime<Utc>,
}

fn cny(minor: i64) -> Money {
    Money::from_minor(minor, Currency::Cny)
}

fn wall(at: DateTime<Utc>) -> String {
    at.with_timezone(&shanghai()).format("%Y-%m-%d %H:%M:%S").to_string()
}

fn zh_date(at: NaiveDateTime) -> String {
    at.format("%Y年%m月%d日 %H:%M:%S").to_string()
}

/// Text safe in an unquoted CSV field.
fn field(s: &str) -> String {
    s.replace(',', "，").replace(['\r', '\n'], " ")
}

/// Signed yuan with two decimals (`-0.01`).
fn yuan(m: Money) -> String {
    m.to_decimal_string()
}

fn parse_yuan(s: &str) -> Result<Money, String> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    let m = Money::parse_decimal(digits, Currency::Cny).map_err(|e| format!("{s:?}: {e}"))?;
    Ok(if neg { cny(-m.minor()) } else { m })
}

impl TradeBill {
    /// `<account>_<yyyyMMdd>` (or `<yyyyMM>` for a month).
    pub fn stem(&self) -> String {
        let days = (self.end - self.start).num_days();
        let date = if days > 1 { self.start.format("%Y%m") } else { self.start.format("%Y%m%d") };
        format!("{}_{date}", self.account)
    }

    /// The zip's file name, as in Alipay's download URL.
    pub fn file_name(&self) -> String {
        format!("{}.csv.zip", self.stem())
    }

    /// Rows of `kind`, and the sums of what the merchant received and of the fees; `None` when a
    /// sum overflows (a file made to).
    fn totals(&self, kind: BillKind) -> Option<(usize, i64, i64)> {
        let mut rows = self.rows.iter().filter(|r| r.kind == kind);
        rows.try_fold((0usize, 0i64, 0i64), |(n, received, fee), r| {
            Some((
                n + 1,
                received.checked_add(r.merchant_received.minor())?,
                fee.checked_add(r.service_fee.minor())?,
            ))
        })
    }

    /// The sum of `f` over every row, `None` on overflow.
    fn sum(&self, f: impl Fn(&BillRow) -> i64) -> Option<i64> {
        self.rows.iter().try_fold(0i64, |acc, r| acc.checked_add(f(r)))
    }

    fn head(&self, title: &str, start_marker: &str) -> String {
        format!(
            "{title}\r\n#账号：[{}]\r\n#起始日期：[{}]   终止日期：[{}]\r\n{start_marker}\r\n",
            self.account,
            zh_date(self.start),
            zh_date(self.end)
        )
    }

    /// The `业务明细` file's text.
    pub fn detail_text(&self) -> String {
        let mut s = self.head(DETAIL_TITLE, DETAIL_START);
        s.push_str(&COLUMNS.join(","));
        s.push_str("\r\n");
        for r in &self.rows {
            // A TAB after identifiers keeps spreadsheets from reading them as numbers, as Alipay does.
            let cells = [
                format!("{}\t", r.trade_no),
                format!("{}\t", field(&r.out_trade_no)),
                format!("{}\t", r.kind.text()),
                field(&r.subject),
                wall(r.created_at),
                wall(r.finished_at),
                "\t".into(),
                "\t".into(),
                "\t".into(),
                "\t".into(),
                format!("{}\t", field(&r.counterparty)),
                yuan(r.order_amount),
                yuan(r.merchant_received),
                "0.00".into(),
                "0.00".into(),
                "0.00".into(),
                "0.00".into(),
                "0.00".into(),
                String::new(),
                "0.00\t".into(),
                "0.00".into(),
                format!("{}\t", r.out_request_no.as_deref().map(field).unwrap_or_default()),
                yuan(r.service_fee),
                "0.00".into(),
                field(&r.remark),
            ];
            s.push_str(&cells.join(","));
            s.push_str("\r\n");
        }
        s.push_str(DETAIL_END);
        s.push_str("\r\n");
        let (pn, preceived, _) = self.totals(BillKind::Payment).unwrap_or_default();
        let (rn, rreceived, _) = self.totals(BillKind::Refund).unwrap_or_default();
        s.push_str(&format!("#交易合计：{pn}笔，商家实收共{}元，商家优惠共0.00元\r\n", yuan(cny(preceived))));
        s.push_str(&format!(
            "#退款合计：{rn}笔，商家实收退款共{}元，商家优惠退款共0.00元\r\n",
            yuan(cny(rreceived))
        ));
        s.push_str(&format!(
            "#导出时间：[{}]\r\n",
            zh_date(self.exported_at.with_timezone(&shanghai()).naive_local())
        ));
        s
    }

    /// The `业务明细(汇总)` file's text (one row for the whole account).
    pub fn summary_text(&self) -> String {
        let mut s = self.head(SUMMARY_TITLE, SUMMARY_START);
        s.push_str(SUMMARY_COLUMNS);
        s.push_str("\r\n");
        let (pn, _, _) = self.totals(BillKind::Payment).unwrap_or_default();
        let (rn, _, _) = self.totals(BillKind::Refund).unwrap_or_default();
        let order = self.sum(|r| r.order_amount.minor()).unwrap_or_default();
        let received = self.sum(|r| r.merchant_received.minor()).unwrap_or_default();
        let fee = self.sum(|r| r.service_fee.minor()).unwrap_or_default();
        s.push_str(&format!(
            "合计,,{pn},{rn},{},{},0.00,0.00,0.00,{},0.00,{}\r\n",
            yuan(cny(order)),
            yuan(cny(received)),
            yuan(cny(fee)),
            yuan(cny(received.saturating_add(fee)))
        ));
        s.push_str(SUMMARY_END);
        s.push_str("\r\n");
        s.push_str(&format!(
            "#导出时间：[{}]\r\n",
            zh_date(self.exported_at.with_timezone(&shanghai()).naive_local())
        ));
        s
    }

    /// The zip Alipay serves: both files, GBK text and GBK names.
    pub fn to_zip(&self) -> Vec<u8> {
        let gbk = |t: &str| crate::params::Charset::Gbk.encode_lossy(t).into_owned();
        let entries = [
            (gbk(&format!("{}_业务明细.csv", self.stem())), gbk(&self.detail_text())),
            (gbk(&format!("{}_业务明细(汇总).csv", self.stem())), gbk(&self.summary_text())),
        ];
        zip_write(&entries, self.exported_at)
    }

    /// Reads the `业务明细` file of a bill zip and checks its totals.
    pub fn from_zip(bytes: &[u8]) -> Result<TradeBill, BillError> {
        let is_detail = |name: &[u8]| {
            crate::params::Charset::Gbk
                .decode(name)
                .or_else(|| String::from_utf8(name.to_vec()).ok())
                .is_some_and(|n| n.ends_with("_业务明细.csv"))
        };
        let entries = zip_read(bytes, is_detail)?;
        let (_, data) = entries.first().ok_or(BillError::NoDetail)?;
        let text = crate::params::Charset::Gbk.decode(data).ok_or(BillError::NotGbk)?;
        Self::parse_detail(&text)
    }

    /// Reads `业务明细` text: columns by their header names, identifiers' TABs trimmed, amounts
    /// exactly; the totals lines must match the rows.
    pub fn parse_detail(text: &str) -> Result<TradeBill, BillError> {
        let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
        let account = lines
            .iter()
            .find_map(|l| l.strip_prefix("#账号：[").and_then(|r| r.strip_suffix(']')))
            .ok_or(BillError::Missing("#账号 line"))?
            .to_owned();
        let dates = lines
            .iter()
            .find_map(|l| l.strip_prefix("#起始日期：["))
            .ok_or(BillError::Missing("#起始日期 line"))?;
        let (start, end) = dates
            .split_once("]   终止日期：[")
            .and_then(|(a, b)| Some((a, b.strip_suffix(']')?)))
            .ok_or(BillError::Missing("终止日期"))?;
        let zh = |s: &str| NaiveDateTime::parse_from_str(s, "%Y年%m月%d日 %H:%M:%S");
        let (start, end) = (
            zh(start).map_err(|e| BillError::Row { line: 3, reason: e.to_string() })?,
            zh(end).map_err(|e| BillError::Row { line: 3, reason: e.to_string() })?,
        );
        let begin = lines
            .iter()
            .position(|l| l.contains("业务明细列表") && !l.contains("结束"))
            .ok_or(BillError::Missing("list start"))?;
        let header: Vec<&str> =
            lines.get(begin + 1).ok_or(BillError::Missing("header"))?.split(',').map(str::trim).collect();
        let col = |name: &'static str| header.iter().position(|h| *h == name).ok_or(BillError::Missing(name));
        let (
            c_trade,
            c_out,
            c_kind,
            c_subject,
            c_created,
            c_finished,
            c_party,
            c_order,
            c_received,
            c_request,
            c_fee,
            c_remark,
        ) = (
            col("支付宝交易号")?,
            col("商户订单号")?,
            col("业务类型")?,
            col("商品名称")?,
            col("创建时间")?,
            col("完成时间")?,
            col("对方账户")?,
            col("订单金额（元）")?,
            col("商家实收（元）")?,
            col("退款批次号/请求号")?,
            col("服务费（元）")?,
            col("备注")?,
        );
        let mut rows = Vec::new();
        let mut end_line = None;
        for (i, line) in lines.iter().enumerate().skip(begin + 2) {
            if line.starts_with('#') {
                end_line = Some(i);
                break;
            }
            if line.trim().is_empty() {
                continue;
            }
            let cells: Vec<&str> =
                line.split(',').map(|c| c.trim_matches(|ch: char| ch == '\t' || ch == ' ')).collect();
            let row_err = |reason: String| BillError::Row { line: i + 1, reason };
            let cell =
                |c: usize| cells.get(c).copied().ok_or_else(|| row_err(format!("no column {}", c + 1)));
            let kind = match cell(c_kind)? {
                "交易" => BillKind::Payment,
                "退款" => BillKind::Refund,
                other => return Err(row_err(format!("unknown 业务类型 {other:?}"))),
            };
            let time = |c: usize| -> Result<DateTime<Utc>, BillError> {
                crate::time::parse_alipay(cell(c)?).map_err(|e| row_err(e.to_string()))
            };
            let money = |c: usize| -> Result<Money, BillError> { parse_yuan(cell(c)?).map_err(row_err) };
            let request = cell(c_request)?;
            rows.push(BillRow {
                trade_no: cell(c_trade)?.to_owned(),
                out_trade_no: cell(c_out)?.to_owned(),
                kind,
                subject: cell(c_subject)?.to_owned(),
                created_at: time(c_created)?,
                finished_at: time(c_finished)?,
                counterparty: cell(c_party)?.to_owned(),
                order_amount: money(c_order)?,
                merchant_received: money(c_received)?,
                out_request_no: (!request.is_empty()).then(|| request.to_owned()),
                service_fee: money(c_fee)?,
                remark: cell(c_remark)?.to_owned(),
            });
        }
        let end_line = end_line.ok_or(BillError::Missing("list end"))?;
        let bill = TradeBill { account, start, end, rows, exported_at: DateTime::<Utc>::MIN_UTC };
        // The totals Alipay prints must be the rows' own.
        for (prefix, kind, word) in [
            ("#交易合计：", BillKind::Payment, "商家实收共"),
            ("#退款合计：", BillKind::Refund, "商家实收退款共"),
        ] {
            let line = lines[end_line..]
                .iter()
                .find_map(|l| l.strip_prefix(prefix))
                .ok_or(BillError::Missing(prefix))?;
            let (count, rest) = line.split_once('笔').ok_or(BillError::Totals(line.to_owned()))?;
            let amount = rest
                .split_once(word)
                .and_then(|(_, a)| a.split_once('元'))
                .map(|(a, _)| a)
                .ok_or(BillError::Totals(line.to_owned()))?;
            let (n, received, _) =
                bill.totals(kind).ok_or_else(|| BillError::Totals("the amounts overflow".into()))?;
            let printed = parse_yuan(amount).map_err(BillError::Totals)?;
            if count.parse::<usize>().ok() != Some(n) || printed.minor() != received {
                return Err(BillError::Totals(format!(
                    "{prefix}{count}笔 {} against {n} rows of {}",
                    yuan(printed),
                    yuan(cny(received))
                )));
            }
        }
        Ok(bill)
    }
}

/// DOS date and time of `at` in Shanghai.
fn dos_time(at: DateTime<Utc>) -> (u16, u16) {
    use chrono::{Datelike as _, Timelike as _};
    let t = at.with_timezone(&shanghai());
    let year = u16::try_from(t.year().clamp(1980, 2107) - 1980).unwrap_or(0);
    let month = u16::try_from(t.month()).unwrap_or(1);
    let day = u16::try_from(t.day()).unwrap_or(1);
    let (h, m, s) = (
        u16::try_from(t.hour()).unwrap_or(0),
        u16::try_from(t.minute()).unwrap_or(0),
        u16::try_from(t.second() / 2).unwrap_or(0),
    );
    ((h << 11) | (m << 5) | s, (year << 9) | (month << 5) | day)
}

fn u32_len(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A zip entry: its name's raw bytes and its data.
type ZipEntry = (Vec<u8>, Vec<u8>);

/// A zip of deflated entries whose names are raw bytes (GBK here, without the UTF-8 flag).
fn zip_write(entries: &[ZipEntry], at: DateTime<Utc>) -> Vec<u8> {
    let (time, date) = dos_time(at);
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        let compressed = enc.write_all(data).and_then(|()| enc.finish()).unwrap_or_default();
        let crc = crc32fast::hash(data);
        let offset = u32_len(out.len());
        let common = |buf: &mut Vec<u8>| {
            buf.extend_from_slice(&20u16.to_le_bytes()); // version needed
            buf.extend_from_slice(&0u16.to_le_bytes()); // flags: no UTF-8 names
            buf.extend_from_slice(&8u16.to_le_bytes()); // deflate
            buf.extend_from_slice(&time.to_le_bytes());
            buf.extend_from_slice(&date.to_le_bytes());
            buf.extend_from_slice(&crc.to_le_bytes());
            buf.extend_from_slice(&u32_len(compressed.len()).to_le_bytes());
            buf.extend_from_slice(&u32_len(data.len()).to_le_bytes());
            buf.extend_from_slice(&u16::try_from(name.len()).unwrap_or(u16::MAX).to_le_bytes());
            buf.extend_from_slice(&0u16.to_le_bytes()); // extra
        };
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        common(&mut out);
        out.extend_from_slice(name);
        out.extend_from_slice(&compressed);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // made by
        common(&mut central);
        central.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name);
    }
    let cd_offset = u32_len(out.len());
    let count = u16::try_from(entries.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&u32_len(central.len()).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// At most this many entries in a bill zip, and this much text once inflated.
const ZIP_MAX_ENTRIES: usize = 64;
const ZIP_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// The entries of a zip (stored or deflated) whose raw names `want` picks, read from its central
/// directory, inflated within [`ZIP_MAX_BYTES`] in all and each checked against its CRC-32.
fn zip_read(bytes: &[u8], want: impl Fn(&[u8]) -> bool) -> Result<Vec<ZipEntry>, BillError> {
    let err = |s: &str| BillError::Zip(s.to_owned());
    let u16_at = |at: usize| -> Result<u16, BillError> {
        bytes
            .get(at..at.saturating_add(2))
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or_else(|| err("truncated"))
    };
    let u32_at = |at: usize| -> Result<u32, BillError> {
        bytes
            .get(at..at.saturating_add(4))
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| err("truncated"))
    };
    let eocd = (0..bytes.len().saturating_sub(21))
        .rev()
        .take(65_557)
        .find(|&i| bytes.get(i..i + 4) == Some(&[0x50, 0x4b, 0x05, 0x06]))
        .ok_or_else(|| err("no end of central directory"))?;
    let count = usize::from(u16_at(eocd + 10)?);
    if count > ZIP_MAX_ENTRIES {
        return Err(BillError::Zip(format!("{count} entries; a bill has two")));
    }
    let as_usize = |v: u32| usize::try_from(v).map_err(|_| err("offset"));
    let mut at = as_usize(u32_at(eocd + 16)?)?;
    let mut out = Vec::new();
    let mut inflated = 0u64;
    for _ in 0..count {
        if u32_at(at)? != 0x0201_4b50 {
            return Err(err("bad central directory entry"));
        }
        let method = u16_at(at + 10)?;
        let crc = u32_at(at + 16)?;
        let csize = as_usize(u32_at(at + 20)?)?;
        let size = u64::from(u32_at(at + 24)?);
        let (nlen, elen, clen) =
            (usize::from(u16_at(at + 28)?), usize::from(u16_at(at + 30)?), usize::from(u16_at(at + 32)?));
        let local = as_usize(u32_at(at + 42)?)?;
        let name = bytes.get(at + 46..at + 46 + nlen).ok_or_else(|| err("truncated name"))?.to_vec();
        at += 46 + nlen + elen + clen;
        if !want(&name) {
            continue;
        }
        if size > ZIP_MAX_BYTES.saturating_sub(inflated) {
            return Err(err("more than 64 MiB of text"));
        }
        if u32_at(local)? != 0x0403_4b50 {
            return Err(err("bad local header"));
        }
        let start = local + 30 + usize::from(u16_at(local + 26)?) + usize::from(u16_at(local + 28)?);
        let raw = bytes.get(start..start.saturating_add(csize)).ok_or_else(|| err("truncated entry"))?;
        let data = match method {
            0 => raw.to_vec(),
            8 => {
                let mut d = Vec::new();
                flate2::read::DeflateDecoder::new(raw)
                    .take(size + 1)
                    .read_to_end(&mut d)
                    .map_err(|e| BillError::Zip(e.to_string()))?;
                d
            }
            m => return Err(BillError::Zip(format!("compression method {m}"))),
        };
        if u64::try_from(data.len()).ok() != Some(size) {
            return Err(err("an entry's size does not match its header"));
        }
        if crc32fast::hash(&data) != crc {
            return Err(err("an entry's CRC-32 does not match its data"));
        }
        inflated += size;
        if inflated > ZIP_MAX_BYTES {
            return Err(err("more than 64 MiB of text"));
        }
        out.push((name, data));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        shanghai().with_ymd_and_hms(2026, 6, 9, h, m, 5).unwrap().with_timezone(&Utc)
    }

    fn bill() -> TradeBill {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 6, 9).unwrap().and_hms_opt(0, 0, 0).unwrap();
        let pay = BillRow {
            trade_no: "2026060922001400001".into(),
            out_trade_no: "HT-1".into(),
            kind: BillKind::Payment,
            subject: "绮拉面霜, 50ml".into(),
            created_at: at(10, 0),
            finished_at: at(10, 1),
            counterparty: "*伟(zha***@sandbox.haitao)".into(),
            order_amount: cny(20_680),
            merchant_received: cny(20_680),
            out_request_no: None,
            service_fee: cny(-124),
            remark: String::new(),
        };
        let refund = BillRow {
            kind: BillKind::Refund,
            finished_at: at(11, 30),
            order_amount: cny(-1_000),
            merchant_received: cny(-1_000),
            out_request_no: Some("R1".into()),
            service_fee: cny(0),
            ..pay.clone()
        };
        TradeBill {
            account: "20880000000000010156".into(),
            start: day,
            end: day + chrono::Duration::days(1),
            rows: vec![pay, refund],
            exported_at: at(23, 0) + chrono::Duration::hours(10),
        }
    }

    #[test]
    fn a_bill_is_written_as_alipay_writes_it_and_read_back() {
        let b = bill();
        let text = b.detail_text();
        assert!(text.starts_with("#支付宝业务明细查询\r\n#账号：[20880000000000010156]\r\n#起始日期：[2026年06月09日 00:00:00]   终止日期：[2026年06月10日 00:00:00]\r\n"));
        assert!(text.contains("\r\n支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）"));
        assert!(text.contains(
            "2026060922001400001\t,HT-1\t,交易\t,绮拉面霜， 50ml,2026-06-09 10:00:05,2026-06-09 10:01:05,"
        ));
        assert!(text.contains(",-10.00,-10.00,"), "refunds are negative");
        assert!(text.contains(
            "#交易合计：1笔，商家实收共206.80元，商家优惠共0.00元\r\n#退款合计：1笔，商家实收退款共-10.00元"
        ));
        assert_eq!(b.file_name(), "20880000000000010156_20260609.csv.zip");
        let zip = b.to_zip();
        let back = TradeBill::from_zip(&zip).unwrap();
        let mut sent = b.rows.clone();
        for r in &mut sent {
            r.subject = "绮拉面霜， 50ml".into();
        }
        assert_eq!(back.rows, sent, "a comma in a name is written full-width");
        assert_eq!((back.account.as_str(), back.start, back.end), (b.account.as_str(), b.start, b.end));
        // Entry names are GBK without the UTF-8 flag, as Alipay's.
        let names: Vec<Vec<u8>> = zip_read(&zip, |_| true).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            crate::params::Charset::Gbk.decode(&names[1]).unwrap(),
            "20880000000000010156_20260609_业务明细(汇总).csv"
        );
        assert!(String::from_utf8(names[0].clone()).is_err(), "not UTF-8");
        // Another zip implementation reads it: GBK names (no UTF-8 flag), deflated GBK text.
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(zip.clone())).unwrap();
        assert_eq!(z.len(), 2);
        let mut entry = z.by_index(0).unwrap();
        assert_eq!(
            crate::params::Charset::Gbk.decode(entry.name_raw()).unwrap(),
            "20880000000000010156_20260609_业务明细.csv"
        );
        let mut raw = Vec::new();
        entry.read_to_end(&mut raw).unwrap();
        assert_eq!(crate::params::Charset::Gbk.decode(&raw).unwrap(), b.detail_text());
        drop(entry);
        let summary = b.summary_text();
        assert!(summary.contains("合计,,1,1,196.80,196.80,0.00,0.00,0.00,-1.24,0.00,195.56"), "{summary}");
    }

    #[test]
    fn a_bill_whose_totals_do_not_add_up_is_refused() {
        let text = bill().detail_text().replace("商家实收共206.80元", "商家实收共206.81元");
        assert!(matches!(TradeBill::parse_detail(&text), Err(BillError::Totals(_))));
        let text = bill().detail_text().replace("#交易合计：1笔", "#交易合计：2笔");
        assert!(matches!(TradeBill::parse_detail(&text), Err(BillError::Totals(_))));
        let text = bill().detail_text().replace(",交易\t,", ",充值\t,");
        assert!(matches!(TradeBill::parse_detail(&text), Err(BillError::Row { .. })));
        assert!(matches!(TradeBill::from_zip(b"not a zip"), Err(BillError::Zip(_))));
        // The same text stored (not deflated) with a CRC that does not match: refused.
        let text = crate::params::Charset::Gbk.encode_lossy(&bill().detail_text()).into_owned();
        let name = crate::params::Charset::Gbk.encode_lossy("x_业务明细.csv").into_owned();
        let mut stored = zip_write_stored(&name, &text);
        assert_eq!(TradeBill::from_zip(&stored).unwrap().rows.len(), 2, "a stored entry reads");
        let crc_at = 14;
        stored[crc_at] ^= 0x01;
        let cd = stored.windows(4).position(|w| w == [0x50, 0x4b, 0x01, 0x02]).unwrap();
        stored[cd + 16] ^= 0x01;
        assert!(matches!(TradeBill::from_zip(&stored), Err(BillError::Zip(m)) if m.contains("CRC")));
        // Too many entries.
        let many: Vec<ZipEntry> = (0..65).map(|i| (format!("{i}").into_bytes(), Vec::new())).collect();
        assert!(matches!(TradeBill::from_zip(&zip_write(&many, bill().exported_at)), Err(BillError::Zip(_))));
    }

    /// One stored (method 0) entry, as some zip tools write.
    fn zip_write_stored(name: &[u8], data: &[u8]) -> Vec<u8> {
        let crc = crc32fast::hash(data);
        let mut out = Vec::new();
        let head = |buf: &mut Vec<u8>| {
            buf.extend_from_slice(&20u16.to_le_bytes());
            buf.extend_from_slice(&0u16.to_le_bytes());
            buf.extend_from_slice(&0u16.to_le_bytes());
            buf.extend_from_slice(&[0; 4]);
            buf.extend_from_slice(&crc.to_le_bytes());
            buf.extend_from_slice(&u32_len(data.len()).to_le_bytes());
            buf.extend_from_slice(&u32_len(data.len()).to_le_bytes());
            buf.extend_from_slice(&u16::try_from(name.len()).unwrap().to_le_bytes());
            buf.extend_from_slice(&0u16.to_le_bytes());
        };
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        head(&mut out);
        out.extend_from_slice(name);
        out.extend_from_slice(data);
        let cd_at = u32_len(out.len());
        let mut cd = Vec::new();
        cd.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        cd.extend_from_slice(&20u16.to_le_bytes());
        head(&mut cd);
        cd.extend_from_slice(&[0; 6]);
        cd.extend_from_slice(&0u32.to_le_bytes());
        cd.extend_from_slice(&0u32.to_le_bytes());
        cd.extend_from_slice(name);
        out.extend_from_slice(&cd);
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&u32_len(cd.len()).to_le_bytes());
        out.extend_from_slice(&cd_at.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    #[test]
    fn amounts_that_overflow_are_refused() {
        let mut b = bill();
        b.rows[0].merchant_received = cny(i64::MAX);
        b.rows.push(b.rows[0].clone());
        let text = b.detail_text().replace("#交易合计：0笔", "#交易合计：2笔");
        let e = TradeBill::parse_detail(&text).unwrap_err();
        assert!(matches!(&e, BillError::Totals(m) if m.contains("overflow")), "{e:?}");
    }

    /// A bill in the layout of a real export quoted by reconciliation parsers (2019 data, 6 + 4
    /// rows, TABs after identifiers): read by column names, totals checked.
    #[test]
    fn reads_the_layout_of_a_real_export() {
        let text = "#支付宝业务明细查询\r\n#账号：[20880211096256330156]\r\n#起始日期：[2019年09月16日 00:00:00]   终止日期：[2019年09月17日 00:00:00]\r\n#-----------------------------------------业务明细列表----------------------------------------\r\n支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注\r\n2019091622001458860515315453\t,service_1568601259302\t,交易\t,下单测试,2019-09-16 10:55:16,2019-09-16 10:55:23,alipay_store\t,alipay_store\t,alipay\t,\t,*津水(602***@qq.com)\t,0.01,0.01,0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,\t,0.00,0.00,下单测试\r\n2019091622001458860515315453\t,service_1568601259302\t,退款\t,下单测试,2019-09-16 10:55:16,2019-09-16 10:56:48,alipay_store\t,alipay_store\t,alipay\t,\t,*津水(602***@qq.com)\t,-0.01,-0.01,0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,re_test_1568602607356\t,0.00,0.00,下单测试\r\n#-----------------------------------------业务明细列表结束------------------------------------\r\n#交易合计：1笔，商家实收共0.01元，商家优惠共0.00元\r\n#退款合计：1笔，商家实收退款共-0.01元，商家优惠退款共0.00元\r\n#导出时间：[2019年09月17日 05:46:49]\r\n";
        let b = TradeBill::parse_detail(text).unwrap();
        assert_eq!(b.rows.len(), 2);
        assert_eq!(b.rows[1].kind, BillKind::Refund);
        assert_eq!(b.rows[1].out_request_no.as_deref(), Some("re_test_1568602607356"));
        assert_eq!(b.rows[1].order_amount, cny(-1));
        assert_eq!(b.rows[0].trade_no, "2019091622001458860515315453");
    }
}
