//! # pagewire-bench
//!
//! Dirty-page traces (format, generators, recorder), the migration simulator and reports.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod recorder;
pub mod report;
pub mod scenarios;
pub mod sim;
pub mod trace;
