//! Search terms for catalog text in Chinese and English, shared by the shop's index and the
//! client's offline cache so both find the same products.
//!
//! SQLite's tokenizers cannot match one- and two-character Chinese queries (面霜, 奶粉) inside longer
//! runs of Han characters. Every run of CJK characters is therefore indexed as its single characters
//! and its overlapping bigrams; Latin words are indexed lower-cased. A query is turned into the same
//! units, all of which must match.
//!
//! A word can also be found inside a compound ("vitamin" in "Multivitamin", "screen" in
//! "Sunscreen"): the index keeps, in a second column `inner`, every tail of at least
//! [`INNER_MIN`] letters of each word made of letters, and a query word of that length matches as
//! a prefix of either column. Whole-word matches weigh more in the ranking ([`RANK_WEIGHTS`]).

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF   // Hiragana, Katakana
        | 0x3400..=0x4DBF // CJK Extension A
        | 0x4E00..=0x9FFF // CJK Unified Ideographs
        | 0xAC00..=0xD7AF // Hangul syllables
        | 0xF900..=0xFAFF // CJK compatibility ideographs
    )
}

enum Run {
    Cjk(Vec<char>),
    Word(String),
}

fn runs(text: &str) -> Vec<Run> {
    let mut out = Vec::new();
    let mut cjk: Vec<char> = Vec::new();
    let mut word = String::new();
    let flush = |cjk: &mut Vec<char>, word: &mut String, out: &mut Vec<Run>| {
        if !cjk.is_empty() {
            out.push(Run::Cjk(std::mem::take(cjk)));
        }
        if !word.is_empty() {
            out.push(Run::Word(std::mem::take(word)));
        }
    };
    for c in text.chars() {
        if is_cjk(c) {
            if !word.is_empty() {
                flush(&mut cjk, &mut word, &mut out);
            }
            cjk.push(c);
        } else if c.is_alphanumeric() {
            if !cjk.is_empty() {
                flush(&mut cjk, &mut word, &mut out);
            }
            word.extend(c.to_lowercase());
        } else {
            flush(&mut cjk, &mut word, &mut out);
        }
    }
    flush(&mut cjk, &mut word, &mut out);
    out
}

/// The indexed form of `text`: space-separated words, CJK characters and CJK bigrams.
pub fn index_terms(text: &str) -> String {
    let mut terms: Vec<String> = Vec::new();
    for run in runs(text) {
        match run {
            Run::Word(w) => terms.push(w),
            Run::Cjk(chars) => {
                for c in &chars {
                    terms.push(c.to_string());
                }
                for pair in chars.windows(2) {
                    terms.push(pair.iter().collect());
                }
            }
        }
    }
    terms.join(" ")
}

/// The shortest query word that is also looked for inside words: shorter ones ("v", "vi") would
/// match inside most of the catalog and are what a shopper types on the way to a longer word.
pub const INNER_MIN: usize = 3;

/// bm25 weights of the `terms` and `inner` columns: a query found as a whole word or its start
/// ranks above one found inside a compound.
pub const RANK_WEIGHTS: (f64, f64) = (4.0, 1.0);

/// The `inner` column's form of `text`: for every word made of letters only, its tails of at least
/// [`INNER_MIN`] letters, lower-cased, without the word itself ("multivitamin" gives
/// "ultivitamin ltivitamin … min"). CJK runs are left out: their bigrams already match anywhere.
pub fn inner_terms(text: &str) -> String {
    let mut terms: Vec<String> = Vec::new();
    for run in runs(text) {
        if let Run::Word(w) = run {
            if !w.chars().all(char::is_alphabetic) {
                continue;
            }
            let chars: Vec<char> = w.chars().collect();
            for start in 1..chars.len() {
                if chars.len() - start >= INNER_MIN {
                    terms.push(chars[start..].iter().collect());
                }
            }
        }
    }
    terms.join(" ")
}

/// A relevance search whose text matches more products than this lists them in catalog order
/// instead of ranking them: ranking tens of thousands of matches of a first typed letter by bm25
/// costs tens of milliseconds on a large catalog and says little about which one is meant. The
/// next letters narrow the matches and bring ranking back.
pub const RANKED_MATCHES_MAX: i64 = 2_000;

/// One unit of a user's query, as every store looks it up: `text` (lower-cased) must be found in
/// the `terms` column (and also in `inner` when `inner`), as a word's start when `prefix`, as a
/// whole unit otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryUnit {
    pub text: String,
    pub prefix: bool,
    pub inner: bool,
}

/// The units of a user's query, every one of which a product must match; empty when the query has
/// nothing searchable. Words match as prefixes ("vita" finds "vitamin", and words of
/// [`INNER_MIN`] letters or more are also looked for inside words); CJK text must appear as typed,
/// as its bigrams (or its one character).
pub fn query_units(query: &str) -> Vec<QueryUnit> {
    let mut units = Vec::new();
    for run in runs(query) {
        match run {
            Run::Word(w) => {
                let inner = w.chars().count() >= INNER_MIN;
                units.push(QueryUnit { text: w, prefix: true, inner });
            }
            Run::Cjk(chars) if chars.len() == 1 => units.extend(chars.iter().map(|c| QueryUnit {
                text: c.to_string(),
                prefix: false,
                inner: false,
            })),
            Run::Cjk(chars) => {
                for pair in chars.windows(2) {
                    units.push(QueryUnit { text: pair.iter().collect(), prefix: false, inner: false });
                }
            }
        }
    }
    units
}

/// An FTS5 MATCH expression for a user's query ([`query_units`]), or `None` when it has nothing
/// searchable. Every part names the columns it may match (`terms`, and `inner` for words of
/// [`INNER_MIN`] letters or more), so the expression can be combined with conditions on other
/// columns of the index.
pub fn match_expression(query: &str) -> Option<String> {
    let parts: Vec<String> = query_units(query)
        .into_iter()
        .map(|u| {
            let columns = if u.inner { "terms inner" } else { "terms" };
            let star = if u.prefix { "*" } else { "" };
            format!("{{{columns}}} : \"{}\"{star}", u.text)
        })
        .collect();
    if parts.is_empty() { None } else { Some(parts.join(" AND ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_unigrams_and_bigrams() {
        assert_eq!(index_terms("保湿面霜 50ml"), "保 湿 面 霜 保湿 湿面 面霜 50ml");
        assert_eq!(index_terms("Kiwi Meadow 奶粉"), "kiwi meadow 奶 粉 奶粉");
    }

    #[test]
    fn inner_terms_are_the_tails_of_words_of_letters() {
        assert_eq!(
            inner_terms("Multivitamin"),
            "ultivitamin ltivitamin tivitamin ivitamin vitamin itamin tamin amin min"
        );
        assert_eq!(inner_terms("Sun 50ml 面霜 Sunscreen"), "unscreen nscreen screen creen reen een");
        assert_eq!(inner_terms("tea"), "");
    }

    #[test]
    fn queries() {
        assert_eq!(match_expression("面霜").as_deref(), Some("{terms} : \"面霜\""));
        assert_eq!(match_expression("霜").as_deref(), Some("{terms} : \"霜\""));
        assert_eq!(
            match_expression("保湿面霜").as_deref(),
            Some("{terms} : \"保湿\" AND {terms} : \"湿面\" AND {terms} : \"面霜\"")
        );
        assert_eq!(
            match_expression("Vita C").as_deref(),
            Some("{terms inner} : \"vita\"* AND {terms} : \"c\"*")
        );
        assert_eq!(
            match_expression("\"; DROP TABLE --").as_deref(),
            Some("{terms inner} : \"drop\"* AND {terms inner} : \"table\"*")
        );
        assert_eq!(match_expression("  ,.!  "), None);
    }
}
