//! # pagewire-bench
//!
//! Dirty-page traces (format, generators, recorder), the migration simulator and reports.
//!
//! Without the default feature `tools`, only [`trace`] is built (the format, its reader and
//! writer, and the generators): what a program that only reads or writes traces needs.
// `unsafe` is allowed in one module only: `recorder::uffd::sys` (syscalls and ioctls).
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "tools")]
pub mod live;
#[cfg(feature = "tools")]
pub mod recorder;
#[cfg(feature = "tools")]
pub mod report;
#[cfg(feature = "tools")]
pub mod scenarios;
#[cfg(feature = "tools")]
pub mod sim;
pub mod trace;
