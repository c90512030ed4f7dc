//! Identifier generation, injectable so tests are deterministic.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Produces unique identifiers (`out_trade_no`, `out_request_no`, `notify_id`, ...).
pub trait IdGen: Send + Sync + fmt::Debug {
    /// A new identifier: `prefix` followed by characters from `[0-9A-Za-z]`, at most 32 long in total.
    fn next_id(&self, prefix: &str) -> String;
}

/// Random identifiers (UUID v4 entropy, hex).
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdGen for RandomIds {
    #[allow(clippy::disallowed_methods, reason = "the seam itself: with no entropy, the host's clock")]
    fn next_id(&self, prefix: &str) -> String {
        let mut bytes = [0u8; 12];
        // The system RNG only fails if the OS has no entropy source at all; fall back to the time so an
        // identifier is still produced (uniqueness is then checked by the store's constraints).
        if aws_lc_rs::rand::fill(&mut bytes).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            bytes.copy_from_slice(&nanos.to_le_bytes()[..12]);
        }
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut id = format!("{prefix}{hex}");
        id.truncate(32);
        id
    }
}

/// `prefix` + a counter: `T000001`, `T000002`...
#[derive(Debug, Default)]
pub struct SequentialIds {
    next: AtomicU64,
}

impl SequentialIds {
    pub fn starting_at(n: u64) -> Self {
        SequentialIds { next: AtomicU64::new(n) }
    }
}

impl IdGen for SequentialIds {
    fn next_id(&self, prefix: &str) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{prefix}{n:06}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_bounded() {
        let r = RandomIds;
        let a = r.next_id("HT");
        let b = r.next_id("HT");
        assert_ne!(a, b);
        assert!(a.len() <= 32 && a.starts_with("HT"));
        let s = SequentialIds::default();
        assert_eq!(s.next_id("T"), "T000001");
        assert_eq!(s.next_id("T"), "T000002");
    }
}
