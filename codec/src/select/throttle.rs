//! Throttled pre-copy: slow the guest so its dirty rate falls under the link rate.
//!
//! Two rules, both on top of [`Precopy`](super::precopy) and its limits:
//! - **Fixed vCPU cap** (`cpu-cap=N`): the guest may use N% of its CPU for the whole
//!   migration, as `cpulimit -l N` limits a process (the tool the study of vCPU limits during
//!   Xen migrations used). The study's "15–25% cap" is therefore `cpu-cap=15` to `cpu-cap=25`;
//!   `pagewire scenarios` also reports the other reading, a 15–25% reduction (`cpu-cap=85` to
//!   `cpu-cap=75`). Reported as a [`CpuThrottle`] of `100 - N`.
//! - **Auto-converge** (the default), as QEMU's `migration_trigger_throttle` does it
//!   (`migration/ram.c`; defaults in `migration/options.c`): after each round, if the bytes
//!   the guest dirtied during it (dirty pages x page size) exceed `threshold` (50)% of the bytes
//!   sent during it, the round did not converge; every `trigger` (2) such rounds the throttle
//!   steps up: first to `initial` (20)%, then by `increment` (10) points, at most `max` (99)%.
//!   `trigger=1` steps up on every non-converging round.

use super::CpuThrottle;
use super::engine::{Choice, Limits, RoundContext, RoundPlan, RoundRule};
use super::registry::{Params, SpecError, parse_percent, parse_value, unknown_param};
use crate::PageBitmap;

/// Throttled pre-copy.
pub type Throttle = super::engine::Iterative<ThrottleRule>;

/// The rule of [`Throttle`]: its parameters and the current throttle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleRule {
    /// A fixed share of CPU the guest keeps, in percent (`cpu-cap`); `None`: auto-converge.
    pub cpu_cap: Option<u8>,
    /// First throttle of auto-converge (`initial`, 20).
    pub initial: u8,
    /// Step of auto-converge (`increment`, 10).
    pub increment: u8,
    /// Highest throttle (`max`, 99).
    pub max: u8,
    /// Dirty bytes above this percentage of the bytes sent make a round non-converging
    /// (`threshold`, 50).
    pub threshold: u8,
    /// Non-converging rounds per step (`trigger`, 2).
    pub trigger: u32,
    /// Pre-copy limits.
    pub limits: Limits,
    current: CpuThrottle,
    high_rounds: u32,
}

impl Default for ThrottleRule {
    fn default() -> Self {
        ThrottleRule {
            cpu_cap: None,
            initial: 20,
            increment: 10,
            max: 99,
            threshold: 50,
            trigger: 2,
            limits: Limits::default(),
            current: CpuThrottle::NONE,
            high_rounds: 0,
        }
    }
}

impl Params for ThrottleRule {
    fn set(&mut self, key: &str, value: &str) -> Result<(), SpecError> {
        match key {
            "cpu-cap" => self.cpu_cap = Some(parse_percent(key, value, 100)?.max(1)),
            "initial" => self.initial = parse_percent(key, value, 99)?,
            "increment" => self.increment = parse_percent(key, value, 99)?,
            "max" => self.max = parse_percent(key, value, 99)?,
            "threshold" => self.threshold = parse_percent(key, value, 100)?,
            "trigger" => self.trigger = parse_value::<u32>(key, value)?.max(1),
            _ if self.limits.set(key, value)? => {}
            _ => return Err(unknown_param(Self::NAME, key)),
        }
        Ok(())
    }
}

impl ThrottleRule {
    fn auto_converge(&mut self, context: &RoundContext<'_>) {
        let page_bytes = u64::from(context.geometry.page_size.get());
        let dirty_bytes = context.observation.dirty.count() * page_bytes;
        let sent_bytes = context.last_round.bytes_sent;
        if dirty_bytes * 100 <= sent_bytes * u64::from(self.threshold) {
            return;
        }
        self.high_rounds += 1;
        if self.high_rounds < self.trigger {
            return;
        }
        self.high_rounds = 0;
        let next = if self.current == CpuThrottle::NONE {
            self.initial
        } else {
            self.current.0.saturating_add(self.increment)
        };
        self.current = CpuThrottle(next.min(self.max));
    }
}

impl RoundRule for ThrottleRule {
    const NAME: &'static str = "throttle";

    fn choose(&mut self, context: &RoundContext<'_>, send: &mut PageBitmap) -> Choice {
        if let Some(reason) = self.limits.check(context) {
            return Choice::Stop(reason);
        }
        match self.cpu_cap {
            Some(cap) => self.current = CpuThrottle(100 - cap.min(100)),
            None if context.iteration.0 > 0 => self.auto_converge(context),
            None => {}
        }
        send.union_with(context.stale);
        Choice::Send(RoundPlan {
            throttle: self.current,
            ..RoundPlan::PRECOPY
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::Decision;
    use crate::select::script::{Outcome, Script, after, params};

    fn throttles(outcome: &Outcome) -> Vec<u8> {
        outcome
            .decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Round(round) => Some(round.throttle.0),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn auto_converge_steps_up_every_second_non_converging_round() {
        // 8 pages of 4096 bytes; each sent page counts 4096 bytes.
        // Round 0 sends 8 (32 KiB); 6 dirtied (24 KiB > 16 KiB): high 1 -> throttle 0.
        // Round 1 sends 6 (24 KiB); 5 dirtied (20 > 12): high 2 -> step to 20.
        // Round 2 sends 5 (20 KiB); 4 dirtied (16 > 10): high 1 -> stays 20.
        // Round 3 sends 4 (16 KiB); 4 dirtied (16 > 8): high 2 -> 30.
        // Round 4 sends 4; 1 dirtied (4 KiB <= 8 KiB): converging -> stays 30. Round 5 ends it
        // (max-factor off: 27 pages sent would pass 3x memory).
        let rounds = [
            after(&[0, 1, 2, 3, 4, 5]),
            after(&[0, 1, 2, 3, 4]),
            after(&[0, 1, 2, 3]),
            after(&[0, 1, 2, 3]),
            after(&[0]),
        ];
        let mut strategy = Throttle::new(
            Script::geometry(8),
            params("min-pages=0,max-rounds=6,max-factor=0"),
        );
        let outcome = Script::new(8).run(&mut strategy, &rounds);
        assert_eq!(throttles(&outcome), [0, 0, 20, 20, 30, 30]);
    }

    #[test]
    fn auto_converge_with_trigger_one_steps_every_round_up_to_the_maximum() {
        // Every page dirtied after every round: each round is non-converging.
        // trigger 1, initial 95: rounds 1.. get 95, then 95 + 10 capped at 99.
        let all = after(&[0, 1, 2, 3]);
        let mut strategy = Throttle::new(
            Script::geometry(4),
            params("trigger=1,initial=95,min-pages=0,max-rounds=4"),
        );
        let outcome = Script::new(4).run(&mut strategy, &[all, all, all, all]);
        assert_eq!(throttles(&outcome), [0, 95, 99, 99]);
    }

    #[test]
    fn fixed_cap_throttles_from_the_first_round() {
        // cpu-cap 80: the guest keeps 80%, a throttle of 20 in every round.
        let mut strategy = Throttle::new(
            Script::geometry(4),
            params("cpu-cap=80,max-rounds=3,min-pages=0"),
        );
        let all = after(&[0, 1, 2, 3]);
        let outcome = Script::new(4).run(&mut strategy, &[all, all, all]);
        assert_eq!(throttles(&outcome), [20, 20, 20]);
        assert!((CpuThrottle(20).guest_speed() - 0.8).abs() < 1e-9);
    }
}
