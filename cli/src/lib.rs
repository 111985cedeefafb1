//! The parts of the `greenlight` command that tests use directly.

pub mod iam;
pub mod ledger_table;
