//! Closed vocabularies kept as text: order and attempt statuses, refund statuses, tracking stages,
//! ticket topics... Each value has exactly one code, the same in JSON (serde's snake_case) and in a
//! database column, and a code that is not one of them is an error that says what it was, never a
//! default.
//!
//! [`codes!`] declares the codes of an enum once; from that list it derives `ALL`, `as_str`,
//! `parse`, [`Code`] and, with the `sqlite` feature, rusqlite's `ToSql`/`FromSql`.

/// A text code that is not one of its vocabulary's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownCode {
    /// What the code was meant to be, e.g. "order status".
    pub kind: &'static str,
    /// The text found.
    pub value: String,
}

/// An enum whose every value has one text code.
pub trait Code: Copy + Eq + 'static {
    /// What a value is, in words ("order status").
    const KIND: &'static str;
    /// Every value, in declaration order.
    const ALL: &'static [Self];

    fn code(self) -> &'static str;

    /// The value whose code is `s`, or an error naming what `s` was.
    fn from_code(s: &str) -> Result<Self, UnknownCode> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.code() == s)
            .ok_or_else(|| UnknownCode { kind: Self::KIND, value: s.to_owned() })
    }
}

/// `'a', 'b'` for an SQL `IN (…)` list of codes. Codes are compile-time identifiers of lower-case
/// letters, digits and underscores (checked by the vocabulary tests), so quoting them is safe.
pub fn sql_list<T: Code>(values: &[T]) -> String {
    values.iter().map(|v| format!("'{}'", v.code())).collect::<Vec<_>>().join(", ")
}

/// Declares the text codes of a unit-only enum (see the module docs).
///
/// ```text
/// codes! { OrderStatus, "order status" {
///     AwaitingPayment => "awaiting_payment",
///     Paid => "paid",
/// } }
/// ```
#[macro_export]
macro_rules! codes {
    ($ty:ident, $kind:literal { $($variant:ident => $code:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $code),+
                }
            }

            pub fn parse(s: &str) -> Option<$ty> {
                <$ty as $crate::code::Code>::from_code(s).ok()
            }
        }

        impl $crate::code::Code for $ty {
            const KIND: &'static str = $kind;
            const ALL: &'static [$ty] = $ty::ALL;

            fn code(self) -> &'static str {
                self.as_str()
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        $crate::sql_text_code!($ty);
    };
}

/// rusqlite's `ToSql`/`FromSql` for a [`Code`] (with the `sqlite` feature).
#[cfg(feature = "sqlite")]
#[macro_export]
#[doc(hidden)]
macro_rules! sql_text_code {
    ($ty:ident) => {
        impl ::rusqlite::types::ToSql for $ty {
            fn to_sql(&self) -> ::rusqlite::Result<::rusqlite::types::ToSqlOutput<'_>> {
                Ok(::rusqlite::types::ToSqlOutput::from(<$ty as $crate::code::Code>::code(*self)))
            }
        }

        impl ::rusqlite::types::FromSql for $ty {
            fn column_result(
                value: ::rusqlite::types::ValueRef<'_>,
            ) -> ::rusqlite::types::FromSqlResult<Self> {
                let text = value.as_str()?;
                <$ty as $crate::code::Code>::from_code(text)
                    .map_err(|e| ::rusqlite::types::FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

#[cfg(not(feature = "sqlite"))]
#[macro_export]
#[doc(hidden)]
macro_rules! sql_text_code {
    ($ty:ident) => {};
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::{
        AttemptStatus, Carrier, HoldReason, OrderStatus, PayMode, PaymentFailure, RefundStatus, TrackingStage,
    };
    use crate::support::{Author, TicketStatus, TicketTopic};

    /// Every code is what serde sends for the same value, parses back to it, is unique, and is
    /// safe to write into SQL.
    fn vocabulary<T: Code + serde::Serialize + std::fmt::Debug>() {
        let mut seen = std::collections::HashSet::new();
        for v in T::ALL {
            let code = v.code();
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::Value::String(code.into()), "{v:?}");
            assert_eq!(T::from_code(code), Ok(*v));
            assert!(seen.insert(code), "{code} twice");
            assert!(
                !code.is_empty()
                    && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{code}"
            );
        }
        let err = T::from_code("no_such_code").unwrap_err();
        assert_eq!(err.kind, T::KIND);
        assert_eq!(err.to_string(), format!("unknown {} \"no_such_code\"", T::KIND));
    }

    #[test]
    fn every_vocabulary_is_one_to_one_with_its_json() {
        vocabulary::<OrderStatus>();
        vocabulary::<AttemptStatus>();
        vocabulary::<PayMode>();
        vocabulary::<HoldReason>();
        vocabulary::<PaymentFailure>();
        vocabulary::<RefundStatus>();
        vocabulary::<TrackingStage>();
        vocabulary::<Carrier>();
        vocabulary::<Author>();
        vocabulary::<TicketStatus>();
        vocabulary::<TicketTopic>();
        vocabulary::<crate::reconciliation::DifferenceKind>();
    }

    #[test]
    fn sql_lists_quote_each_code() {
        assert_eq!(sql_list(&[OrderStatus::Paid, OrderStatus::Held]), "'paid', 'held'");
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn a_damaged_column_is_an_error_that_says_what_it_held() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let back: OrderStatus =
            c.query_row("SELECT ?1", [OrderStatus::CustomsDeclared], |r| r.get(0)).unwrap();
        assert_eq!(back, OrderStatus::CustomsDeclared);
        let err = c.query_row("SELECT 'shipped_twice'", [], |r| r.get::<_, OrderStatus>(0)).unwrap_err();
        assert!(err.to_string().contains("unknown order status \"shipped_twice\""), "{err}");
        let err = c.query_row("SELECT 7", [], |r| r.get::<_, OrderStatus>(0)).unwrap_err();
        assert!(matches!(err, rusqlite::Error::InvalidColumnType(..)), "{err}");
    }
}
