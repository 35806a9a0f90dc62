//! # pagewire-bench
//!
//! Dirty-page traces (format, generators, recorder), the migration simulator and reports.
// `unsafe` is allowed in one module only: `recorder::uffd::sys` (syscalls and ioctls).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod live;
pub mod recorder;
pub mod report;
pub mod scenarios;
pub mod sim;
pub mod trace;
