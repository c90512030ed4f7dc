//! Server-rendered pages: one layout, inline styles, no external assets, in Chinese or English
//! (see [`Lang::resolve`]).

use axum::http::HeaderMap;
use axum::http::header::{ACCEPT_LANGUAGE, COOKIE};

/// The cookie that keeps a cashier's language: set by the cashier when the shopper picks a
/// language, and by the Haitao app to open the cashier in the app's language.
pub const LANG_COOKIE: &str = "haitao_cashier_lang";

/// The page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lang {
    pub en: bool,
}

impl Lang {
    /// `lang=en` or `lang=zh-CN` (also `zh`) in the query, when the shopper picked one.
    pub fn from_query(q: Option<&str>) -> Option<Lang> {
        q?.split('&').find_map(|p| match p {
            "lang=en" => Some(Lang { en: true }),
            "lang=zh-CN" | "lang=zh" => Some(Lang { en: false }),
            _ => None,
        })
    }

    /// The language of a cashier page: the one the link asks for (`?lang=`), else the one kept in
    /// the [`LANG_COOKIE`], else the browser's first choice between Chinese and English
    /// (`Accept-Language`), else Chinese.
    pub fn resolve(q: Option<&str>, headers: &HeaderMap) -> Lang {
        Lang::from_query(q)
            .or_else(|| Lang::from_cookie(headers))
            .or_else(|| Lang::from_accept_language(headers))
            .unwrap_or_default()
    }

    fn from_cookie(headers: &HeaderMap) -> Option<Lang> {
        headers.get_all(COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(
            |c| match c.trim().split_once('=') {
                Some((LANG_COOKIE, "en")) => Some(Lang { en: true }),
                Some((LANG_COOKIE, "zh-CN")) => Some(Lang { en: false }),
                _ => None,
            },
        )
    }

    /// The most preferred of Chinese and English in an `Accept-Language` header (`en-GB,
    /// zh;q=0.8` is English); `None` when it names neither.
    fn from_accept_language(headers: &HeaderMap) -> Option<Lang> {
        let header = headers.get(ACCEPT_LANGUAGE)?.to_str().ok()?;
        let mut best: Option<(u16, Lang)> = None;
        for item in header.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let lang = if tag == "en" || tag.starts_with("en-") {
                Lang { en: true }
            } else if tag == "zh" || tag.starts_with("zh-") {
                Lang { en: false }
            } else {
                continue;
            };
            // Quality in thousandths (q=0.8 is 800); a malformed one counts as 0.
            let q = parts.find_map(|p| p.trim().strip_prefix("q=")).map_or(1000, |q| quality(q.trim()));
            if best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.filter(|(q, _)| *q > 0).map(|(_, l)| l)
    }

    pub fn t<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        if self.en { en } else { zh }
    }

    /// `?lang=en` or empty, for links and form actions.
    pub fn suffix(self) -> &'static str {
        if self.en { "?lang=en" } else { "" }
    }

    pub fn code(self) -> &'static str {
        if self.en { "en" } else { "zh-CN" }
    }
}

/// A page's language is always known: the extractor never rejects.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Lang, Self::Rejection> {
        Ok(Lang::resolve(parts.uri.query(), &parts.headers))
    }
}

/// An `Accept-Language` quality value (`1`, `0.8`, `0.125`) in thousandths.
fn quality(q: &str) -> u16 {
    let (whole, frac) = q.split_once('.').unwrap_or((q, ""));
    if whole == "1" {
        return 1000;
    }
    if whole != "0" || frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    let digits: String = format!("{frac:0<3}");
    digits.parse().unwrap_or(0)
}

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Formats fen as `¥1,234.56`.
pub fn yuan(fen: i64) -> String {
    let neg = fen < 0;
    let abs = fen.unsigned_abs();
    let int = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{}¥{grouped}.{:02}", if neg { "-" } else { "" }, abs % 100)
}

const STYLE: &str = r#"
:root{--blue:#1677ff;--ink:#1f2329;--sub:#646a73;--line:#dee0e3;--bg:#f5f6f7;--card:#fff;--ok:#00b42a;--bad:#f53f3f;--warn:#ff7d00}
@media (prefers-color-scheme:dark){:root{--ink:#e8e9eb;--sub:#a6abb3;--line:#3a3d42;--bg:#17181a;--card:#222326}}
*{box-sizing:border-box}
body{margin:0;font:15px/1.6 "Noto Sans CJK SC","PingFang SC","Microsoft YaHei",system-ui,sans-serif;color:var(--ink);background:var(--bg)}
header{background:var(--blue);color:#fff;padding:10px 20px;display:flex;justify-content:space-between;align-items:center;gap:12px;flex-wrap:wrap}
header b{font-size:18px;letter-spacing:.5px}
header a{color:#fff}
main{max-width:880px;margin:20px auto;padding:0 16px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 20px;margin-bottom:16px}
.row{display:flex;gap:16px;flex-wrap:wrap}
.row>*{flex:1 1 260px}
h1{font-size:20px;margin:0 0 8px}
h2{font-size:16px;margin:0 0 10px}
.amount{font-size:30px;font-weight:700;color:var(--warn)}
.muted{color:var(--sub);font-size:13px}
label{display:block;margin:6px 0 2px}
input[type=text],input[type=password],input[type=tel]{width:100%;padding:9px 10px;border:1px solid var(--line);border-radius:6px;font:inherit;background:var(--card);color:var(--ink)}
button,.btn{display:inline-block;background:var(--blue);color:#fff;border:0;border-radius:6px;padding:9px 18px;font:inherit;cursor:pointer;text-decoration:none}
button.secondary,.btn.secondary{background:transparent;color:var(--blue);border:1px solid var(--blue)}
button.link{background:none;color:var(--blue);padding:0;border:0;text-decoration:underline}
:focus-visible{outline:3px solid #ffb020;outline-offset:2px}
.opt{display:flex;gap:10px;align-items:flex-start;border:1px solid var(--line);border-radius:8px;padding:10px 12px;margin:8px 0}
.opt.off{opacity:.55}
.opt input{margin-top:5px}
.reason{color:var(--bad);font-size:13px}
.msg{padding:10px 12px;border-radius:6px;margin-bottom:12px}
.msg.err{background:#fff1f0;color:#a8071a;border:1px solid #ffccc7}
.msg.ok{background:#f6ffed;color:#135200;border:1px solid #b7eb8f}
.qr svg{width:168px;height:168px;background:#fff;padding:6px;border-radius:6px}
table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid var(--line);padding:6px 4px;text-align:left;font-size:14px}
.persona{display:inline-block;margin:4px 6px 4px 0}
.big{font-size:22px;font-weight:700}
.check{font-size:48px;color:var(--ok)}
"#;

/// A complete page.
pub fn page(lang: Lang, title: &str, body: &str, head_extra: &str) -> String {
    let other = if lang.en { ("?lang=zh-CN", "中文") } else { ("?lang=en", "English") };
    format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style>{head_extra}</head><body>\
         <header><b>{}</b><span><span class=\"muted\" style=\"color:#dbe8ff\">{}</span> · <a href=\"{}\">{}</a></span></header>\
         <main>{body}</main></body></html>",
        lang.code(),
        esc(title),
        lang.t("支付宝 · 收银台", "Alipay · Cashier"),
        lang.t("Haitao 本地沙箱，非真实支付", "Haitao local sandbox — no real money"),
        other.0,
        other.1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_language_is_the_links_then_the_kept_one_then_the_browsers() {
        let en = Lang { en: true };
        let zh = Lang { en: false };
        let none = HeaderMap::new();
        assert_eq!(Lang::resolve(None, &none), zh, "Chinese by default");
        assert_eq!(Lang::resolve(Some("lang=en"), &none), en);
        assert_eq!(Lang::resolve(Some("x=1&lang=zh-CN"), &headers(&[("accept-language", "en")])), zh);
        let browser_en = headers(&[("accept-language", "en-GB,en;q=0.9,zh-CN;q=0.8")]);
        assert_eq!(Lang::resolve(None, &browser_en), en);
        let browser_zh = headers(&[("accept-language", "fr-FR, zh-CN;q=0.9, en;q=0.5")]);
        assert_eq!(Lang::resolve(None, &browser_zh), zh);
        assert_eq!(Lang::resolve(None, &headers(&[("accept-language", "de, fr;q=0.5")])), zh, "neither");
        assert_eq!(Lang::resolve(None, &headers(&[("accept-language", "en;q=0, zh;q=0.1")])), zh);
        assert_eq!(Lang::resolve(None, &headers(&[("accept-language", "zh;q=0.3, en;q=0.35")])), en);
        assert_eq!(
            Lang::resolve(None, &headers(&[("accept-language", "en;q=bogus")])),
            zh,
            "no quality, no choice"
        );
        // The kept choice beats the browser; the link beats both.
        let kept_zh = headers(&[("cookie", "a=1; haitao_cashier_lang=zh-CN"), ("accept-language", "en")]);
        assert_eq!(Lang::resolve(None, &kept_zh), zh);
        assert_eq!(Lang::resolve(Some("lang=en"), &kept_zh), en);
        let kept_en = headers(&[("cookie", "haitao_cashier_lang=en")]);
        assert_eq!(Lang::resolve(None, &kept_en), en);
        assert_eq!(
            Lang::resolve(None, &headers(&[("cookie", "haitao_cashier_lang=fr")])),
            zh,
            "unknown: ignored"
        );
        assert_eq!(quality("0.125"), 125);
        assert_eq!(quality("0.8"), 800);
        assert_eq!(quality("1.000"), 1000);
        assert_eq!(quality("0.1234"), 0);
    }

    #[test]
    fn escapes_and_formats() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(yuan(12_345_678), "¥123,456.78");
        assert_eq!(yuan(5), "¥0.05");
        assert_eq!(yuan(100_000), "¥1,000.00");
    }
}
