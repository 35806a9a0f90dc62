//! Parsing the recorder's command-line quantities: durations (`100ms`, `2s`, `1.5m`) and
//! sizes (`64MiB`, `1GiB`, `4096`).

use std::time::Duration;

/// A duration or size that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse {text:?} as {expected}")]
pub struct UnitParseError {
    /// The input.
    pub text: String,
    /// What was expected, with examples.
    pub expected: &'static str,
}

/// Splits `12.5ms` into `(12.5, "ms")`.
fn split_number(text: &str) -> Option<(f64, &str)> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let value: f64 = text[..end].parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some((value, text[end..].trim()))
}

/// Parses a duration: a number with unit `us`, `ms`, `s` (default) or `m`.
///
/// ```
/// use std::time::Duration;
/// use pagewire_bench::recorder::units::parse_duration;
/// assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
/// assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
/// assert!(parse_duration("fast").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, UnitParseError> {
    let error = || UnitParseError {
        text: text.to_owned(),
        expected: "a duration such as 100ms, 2s or 1m",
    };
    let (value, unit) = split_number(text).ok_or_else(error)?;
    let seconds = match unit {
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        _ => return Err(error()),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| error())
}

/// Parses a byte size: a number with unit `B` (default), `KiB`, `MiB`, `GiB` (or `K`, `M`,
/// `G`, meaning the same powers of two).
///
/// ```
/// use pagewire_bench::recorder::units::parse_size;
/// assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
/// assert_eq!(parse_size("4096").unwrap(), 4096);
/// ```
pub fn parse_size(text: &str) -> Result<u64, UnitParseError> {
    let error = || UnitParseError {
        text: text.to_owned(),
        expected: "a size such as 512MiB, 2GiB or 65536",
    };
    let (value, unit) = split_number(text).ok_or_else(error)?;
    let scale = match unit {
        "" | "B" => 1u64,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        _ => return Err(error()),
    };
    let bytes = value * scale as f64;
    (bytes < u64::MAX as f64)
        .then_some(bytes as u64)
        .ok_or_else(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse_and_garbage_is_rejected() {
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_size("1.5KiB").unwrap(), 1536);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        for bad in ["", "ms", "-1s", "1h", "1..2s", "NaNs"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for bad in ["", "1PB", "x", "1e30GiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
