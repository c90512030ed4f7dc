//! Server-rendered pages: one layout, inline styles, no external assets, Chinese by default with
//! English on `?lang=en`.

/// The page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lang {
    pub en: bool,
}

impl Lang {
    pub fn from_query(q: Option<&str>) -> Lang {
        Lang { en: q.is_some_and(|q| q.split('&').any(|p| p == "lang=en")) }
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
    let other = if lang.en { ("?", "中文") } else { ("?lang=en", "English") };
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

    #[test]
    fn escapes_and_formats() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(yuan(12_345_678), "¥123,456.78");
        assert_eq!(yuan(5), "¥0.05");
        assert_eq!(yuan(100_000), "¥1,000.00");
    }
}
