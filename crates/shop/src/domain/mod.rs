//! The shop's rules as synchronous functions of what the store read, with no I/O. Stores run them
//! inside the transaction that reads their inputs and writes their outcome; handlers and jobs do
//! the talking (HTTP, the gateway) around one such call.

pub mod payments;
pub mod refunds;
