//! What the drain observer saw, per workload, beside the audit's rows: the leader's
//! `GET /drains` answer (its one definition is `observe::report`), and the
//! recommendation the audit draws from it (docs/decisions.md, "audit: what was observed").
//! Pure: the read through the API server's service proxy is in `observed_read.rs`.

use serde::Serialize;

use super::Row;
pub use crate::observe::report::{DRAINS_PATH, DrainsReport, RecentDrain, WorkloadReport};

/// The hold the planner gives the workload now: D, Q and M, and whether it adapts (not when
/// M is at or below D, nor on the host network: fixed holds of D).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedHold {
    pub delay: u32,
    pub quiet: u32,
    pub max_delay: u32,
    pub adapts: bool,
}

impl PlannedHold {
    pub fn of(plan: &crate::plan::Plan) -> Self {
        Self {
            delay: plan.delay,
            quiet: plan.quiet,
            max_delay: plan.max_delay,
            adapts: plan.hold_adapts,
        }
    }

    /// The longest hold: M when the hold adapts, else D; and the annotation that sets it.
    fn limit(&self) -> (u32, &'static str) {
        if self.adapts {
            (self.max_delay, "max-delay")
        } else {
            (self.delay, "delay")
        }
    }

    /// Time after the last arrival before an adaptive hold ends (none for a fixed one).
    fn quiet_window(&self) -> u32 {
        if self.adapts { self.quiet } else { 0 }
    }
}

/// Fewer drains than this and no cap hit: too few to call the hold enough.
pub const MIN_DRAINS: u64 = 5;
/// "Enough" needs the longest lag plus Q within this share of the hold's limit (in percent):
/// a quarter of headroom for lag the sample has not seen yet.
pub const ENOUGH_PERCENT: u32 = 75;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// A hold hit its cap with traffic still arriving: requests may have been lost.
    Raise,
    /// No cap hit, but the longest lag comes near the limit.
    Close,
    /// No cap hit, the longest lag well under the limit.
    Enough,
    /// Too few drains to tell.
    TooFew,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Raise => "raise",
            Verdict::Close => "close",
            Verdict::Enough => "enough",
            Verdict::TooFew => "too-few",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recommendation {
    pub verdict: Verdict,
    pub message: String,
}

/// What a row shows of the observed drains.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedSummary {
    pub drains: u64,
    pub cap_hits: u64,
    pub lag_median_seconds: Option<f64>,
    pub lag_max_seconds: Option<f64>,
    /// The recent drains the lag is taken over (the leader keeps the last 32).
    pub recent: usize,
    pub recommendation: Recommendation,
}

fn whole(seconds: f64) -> String {
    format!("{}", seconds.ceil() as u64)
}

/// The recommendation for one workload's observed drains, under the hold planned now
/// (`None`: the planner gives it none, e.g. it would be denied).
pub fn recommend(observed: &WorkloadReport, hold: Option<PlannedHold>) -> Recommendation {
    let recent = observed.recent.len();
    let lag = observed.lag_max_seconds;
    let setting = hold.map(|h| h.limit());
    if observed.cap_hits > 0 {
        let (name, cap) = match setting {
            Some((limit, name)) => (name, format!(" ({limit} s)")),
            None => ("max-delay", String::new()),
        };
        let suggestion = setting.map_or(String::new(), |(limit, _)| {
            format!(", e.g. drain.io/max-delay: \"{}s\"", limit.max(1) * 2)
        });
        return Recommendation {
            verdict: Verdict::Raise,
            message: format!(
                "raise {name}: {} of {} drains hit the cap{cap} with traffic still arriving{suggestion}, or use a drain.io/profile",
                observed.cap_hits, observed.drains
            ),
        };
    }
    if observed.drains < MIN_DRAINS {
        return Recommendation {
            verdict: Verdict::TooFew,
            message: format!(
                "too few drains to tell: {} of at least {MIN_DRAINS}, none hit the cap",
                observed.drains
            ),
        };
    }
    let last = match recent {
        1 => "the last drain".to_string(),
        n => format!("the last {n} drains"),
    };
    let seen = match lag {
        Some(lag) => format!("lag at most {} s over {last}", whole(lag)),
        None => format!("no arrival after deletion over {last}"),
    };
    let Some(hold) = hold else {
        return Recommendation {
            verdict: Verdict::Enough,
            message: format!("no hold hit its cap: {seen}"),
        };
    };
    let (limit, name) = hold.limit();
    let needed = lag.unwrap_or(0.0) + f64::from(hold.quiet_window());
    if needed * 100.0 <= f64::from(limit) * f64::from(ENOUGH_PERCENT) {
        Recommendation {
            verdict: Verdict::Enough,
            message: format!("{name} {limit} s is enough: {seen}"),
        }
    } else {
        let quiet = match hold.quiet_window() {
            0 => String::new(),
            q => format!(" (plus {q} s quiet)"),
        };
        Recommendation {
            verdict: Verdict::Close,
            message: format!(
                "{name} {limit} s is close: {seen}{quiet}, over {ENOUGH_PERCENT}% of it; raise it before holds hit the cap"
            ),
        }
    }
}

/// Puts each observed workload beside its row (by `Kind namespace/name`), with its
/// recommendation; rows the observer has nothing for are left as they are.
pub fn attach(rows: &mut [Row], observed: &[WorkloadReport]) {
    for row in rows.iter_mut() {
        let Some(seen) = observed.iter().find(|o| o.id() == row.workload) else {
            continue;
        };
        row.observed = Some(ObservedSummary {
            drains: seen.drains,
            cap_hits: seen.cap_hits,
            lag_median_seconds: seen.lag_median_seconds,
            lag_max_seconds: seen.lag_max_seconds,
            recent: seen.recent.len(),
            recommendation: recommend(seen, row.planned_hold),
        });
    }
}

#[cfg(test)]
#[path = "observed_tests.rs"]
mod tests;
