//! Strategies by name, with parameters: what the CLI's `--strategies precopy,two-fold,ours`
//! resolves through.
//!
//! A spec is `name` or `name:key=value,key=value`. In a list, specs are separated by commas
//! too: an item holding `=` and no `:` is one more parameter of the spec before it, so
//! `precopy:max-rounds=10,min-pages=0,two-fold` is two specs.
//!
//! ```
//! use pagewire_codec::select::{Geometry, build, parse_list};
//! use pagewire_codec::{PageCount, PageSize};
//! let geometry = Geometry { page_count: PageCount(1024), page_size: PageSize::KIB_4 };
//! let specs = parse_list("precopy:max-rounds=10,min-pages=0,two-fold,ours").unwrap();
//! let names: Vec<_> = specs.iter().map(|s| build(s, geometry).unwrap().name()).collect();
//! assert_eq!(names, ["precopy", "two-fold", "ours"]);
//! assert!(parse_list("precopy:bogus=1").and_then(|s| build(&s[0], geometry).map(|_| ())).is_err());
//! ```

use std::str::FromStr;

use super::engine::Iterative;
use super::{
    Geometry, Strategy, history_majority, hybrid, improved_precopy, lru_order, mirror, ours,
    postcopy, precopy, stop_and_copy, throttle, time_series, two_fold,
};

/// Why a strategy spec was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// No strategy has this name.
    #[error("unknown strategy {0:?} (known: {known})", known = names().join(", "))]
    UnknownStrategy(String),
    /// The strategy has no parameter of this name.
    #[error("strategy {strategy} has no parameter {key:?}")]
    UnknownParam {
        /// The strategy.
        strategy: &'static str,
        /// The parameter asked for.
        key: String,
    },
    /// A parameter's value did not parse or is out of range.
    #[error("parameter {key}={value:?}: expected {expected}")]
    BadValue {
        /// The parameter.
        key: String,
        /// The value given.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// An item of a spec is not `key=value`, or a name is empty.
    #[error("malformed strategy spec item {0:?}")]
    Malformed(String),
}

/// A strategy name and its parameter settings, as parsed from `name:key=value,...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrategySpec {
    /// The strategy's registry name.
    pub name: String,
    /// `key=value` settings, applied in order over the defaults.
    pub params: Vec<(String, String)>,
}

impl FromStr for StrategySpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        let mut specs = parse_list(text)?;
        match (specs.pop(), specs.is_empty()) {
            (Some(spec), true) => Ok(spec),
            _ => Err(SpecError::Malformed(text.to_owned())),
        }
    }
}

/// Writes the spec as it parses: `name`, or `name:key=value,key=value`.
///
/// ```
/// use pagewire_codec::select::StrategySpec;
/// let spec: StrategySpec = "throttle:cpu-cap=20,downtime-ms=0".parse().unwrap();
/// assert_eq!(spec.to_string(), "throttle:cpu-cap=20,downtime-ms=0");
/// assert_eq!(spec.to_string().parse::<StrategySpec>().unwrap(), spec);
/// ```
impl std::fmt::Display for StrategySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        for (index, (key, value)) in self.params.iter().enumerate() {
            let separator = if index == 0 { ':' } else { ',' };
            write!(f, "{separator}{key}={value}")?;
        }
        Ok(())
    }
}

/// Parses a comma-separated list of specs (see the module documentation).
pub fn parse_list(text: &str) -> Result<Vec<StrategySpec>, SpecError> {
    let mut specs: Vec<StrategySpec> = Vec::new();
    for item in text.split(',').map(str::trim) {
        let (name, param) = match item.split_once(':') {
            Some((name, param)) => (Some(name.trim()), Some(param.trim())),
            None if item.contains('=') => (None, Some(item)),
            None => (Some(item), None),
        };
        if let Some(name) = name {
            if name.is_empty() {
                return Err(SpecError::Malformed(item.to_owned()));
            }
            specs.push(StrategySpec {
                name: name.to_owned(),
                params: Vec::new(),
            });
        }
        if let Some(param) = param {
            let (key, value) = param
                .split_once('=')
                .ok_or_else(|| SpecError::Malformed(item.to_owned()))?;
            let spec = specs
                .last_mut()
                .ok_or_else(|| SpecError::Malformed(item.to_owned()))?;
            spec.params
                .push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    Ok(specs)
}

/// Parameters of a strategy: defaults from the paper, settable by key.
pub trait Params: Default {
    /// Sets parameter `key` from its text `value`.
    fn set(&mut self, key: &str, value: &str) -> Result<(), SpecError>;
}

/// The names of every registered strategy, in the order reports list them.
pub fn names() -> &'static [&'static str] {
    &[
        "stop-and-copy",
        "precopy",
        "improved-precopy",
        "time-series",
        "two-fold",
        "history-majority",
        "lru-order",
        "mirror",
        "postcopy",
        "hybrid",
        "throttle",
        "ours",
    ]
}

/// Builds the strategy `spec` names, over a memory of `geometry`.
pub fn build(spec: &StrategySpec, geometry: Geometry) -> Result<Box<dyn Strategy>, SpecError> {
    match spec.name.as_str() {
        "stop-and-copy" => make(
            spec,
            geometry,
            Iterative::<stop_and_copy::StopAndCopyRule>::new,
        ),
        "precopy" => make(spec, geometry, Iterative::<precopy::PrecopyRule>::new),
        "improved-precopy" => make(spec, geometry, improved_precopy::ImprovedPrecopy::with),
        "time-series" => make(spec, geometry, time_series::TimeSeries::with),
        "two-fold" => make(spec, geometry, two_fold::TwoFold::with),
        "history-majority" => make(spec, geometry, history_majority::HistoryMajority::with),
        "lru-order" => make(spec, geometry, lru_order::LruOrder::with),
        "mirror" => make(spec, geometry, mirror::Mirror::with),
        "postcopy" => make(spec, geometry, Iterative::<postcopy::PostcopyRule>::new),
        "hybrid" => make(spec, geometry, Iterative::<hybrid::HybridRule>::new),
        "throttle" => make(spec, geometry, Iterative::<throttle::ThrottleRule>::new),
        "ours" => make(spec, geometry, ours::Ours::with),
        other => Err(SpecError::UnknownStrategy(other.to_owned())),
    }
}

fn make<P: Params, S: Strategy + 'static>(
    spec: &StrategySpec,
    geometry: Geometry,
    construct: fn(Geometry, P) -> S,
) -> Result<Box<dyn Strategy>, SpecError> {
    let mut params = P::default();
    for (key, value) in &spec.params {
        params.set(key, value)?;
    }
    Ok(Box::new(construct(geometry, params)))
}

/// Parses a parameter value of type `T`.
pub(crate) fn parse_value<T: FromStr>(key: &str, value: &str) -> Result<T, SpecError> {
    value.parse().map_err(|_| SpecError::BadValue {
        key: key.to_owned(),
        value: value.to_owned(),
        expected: std::any::type_name::<T>(),
    })
}

/// Parses a percentage from 0 to `max`.
pub(crate) fn parse_percent(key: &str, value: &str, max: u8) -> Result<u8, SpecError> {
    let percent: u8 = parse_value(key, value)?;
    if percent > max {
        return Err(SpecError::BadValue {
            key: key.to_owned(),
            value: value.to_owned(),
            expected: "a percentage in range",
        });
    }
    Ok(percent)
}

/// The error for a parameter `strategy` does not have.
pub(crate) fn unknown_param(strategy: &'static str, key: &str) -> SpecError {
    SpecError::UnknownParam {
        strategy,
        key: key.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::script::Script;

    #[test]
    fn every_name_builds_with_defaults_and_reports_its_name() {
        for name in names() {
            let spec: StrategySpec = name.parse().unwrap();
            let strategy = build(&spec, Script::geometry(16)).unwrap();
            assert_eq!(strategy.name(), *name);
        }
    }

    #[test]
    fn list_attaches_bare_parameters_to_the_spec_before_them() {
        let specs =
            parse_list("precopy:max-rounds=3, min-pages=0,two-fold,ours:cheap-bytes=64").unwrap();
        assert_eq!(specs.len(), 3);
        assert_eq!(specs[0].params.len(), 2);
        assert_eq!(specs[0].params[1], ("min-pages".into(), "0".into()));
        assert!(specs[1].params.is_empty());
        assert_eq!(specs[2].name, "ours");
    }

    #[test]
    fn malformed_specs_and_unknown_names_are_refused() {
        assert!(matches!(parse_list("=3"), Err(SpecError::Malformed(_))));
        assert!(matches!(parse_list(":a=1"), Err(SpecError::Malformed(_))));
        assert!(matches!(
            parse_list("precopy:rounds"),
            Err(SpecError::Malformed(_))
        ));
        let geometry = Script::geometry(16);
        let spec: StrategySpec = "nope".parse().unwrap();
        assert!(matches!(
            build(&spec, geometry),
            Err(SpecError::UnknownStrategy(_))
        ));
        let spec: StrategySpec = "precopy:max-rounds=x".parse().unwrap();
        assert!(matches!(
            build(&spec, geometry),
            Err(SpecError::BadValue { .. })
        ));
        let spec: StrategySpec = "mirror:max-rounds=3".parse().unwrap();
        assert!(matches!(
            build(&spec, geometry),
            Err(SpecError::UnknownParam { .. })
        ));
        assert!("a,b".parse::<StrategySpec>().is_err());
    }
}
