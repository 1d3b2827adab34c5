//! When a planned container gets its stop signal: at a fixed time, or at the end of the
//! helper's adaptive hold (DESIGN.md section 2, docs/decisions.md "The adaptive hold").

use serde::Serialize;

/// The stop-signal time of one planned container, in seconds after deletion (T0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Timing {
    /// At `seconds`: the native sleep, or the helper's fixed delay.
    Fixed { seconds: u32 },
    /// The helper holds from `floor` (D) while new connections still arrive in the pod, until
    /// none arrived for `quiet` (Q), at `cap` (M) at the latest; then `stagger` more.
    Adaptive {
        floor: u32,
        quiet: u32,
        cap: u32,
        stagger: u32,
        /// Periods of the probes that connect into the pod: their connections are discounted.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        probe_periods: Vec<u32>,
    },
    /// An app behind an adaptive front proxy: from `floor`, the helper holds until nothing
    /// listens on the proxy's `ports` any more (its graceful stop began), at `until` at the
    /// latest; then `stagger` (S) more.
    AfterProxy {
        floor: u32,
        ports: Vec<u16>,
        until: u32,
        stagger: u32,
    },
    /// A container an earlier run planned: only the range its record keeps is known.
    Recorded { earliest: u32, latest: u32 },
}

impl Timing {
    /// The earliest time of the stop signal.
    pub fn earliest(&self) -> u32 {
        match self {
            Timing::Fixed { seconds } => *seconds,
            Timing::Adaptive { floor, stagger, .. } | Timing::AfterProxy { floor, stagger, .. } => {
                floor.saturating_add(*stagger)
            }
            Timing::Recorded { earliest, .. } => *earliest,
        }
    }

    /// The latest time of the stop signal: what the grace period must cover (plus B).
    pub fn latest(&self) -> u32 {
        match self {
            Timing::Fixed { seconds } => *seconds,
            Timing::Adaptive { cap, stagger, .. } => cap.saturating_add(*stagger),
            Timing::AfterProxy { until, stagger, .. } => until.saturating_add(*stagger),
            Timing::Recorded { latest, .. } => *latest,
        }
    }

    /// Whether the signal follows the traffic (or the proxy) rather than a fixed time.
    pub fn is_adaptive(&self) -> bool {
        match self {
            Timing::Fixed { .. } => false,
            Timing::Recorded { earliest, latest } => earliest != latest,
            Timing::Adaptive { .. } | Timing::AfterProxy { .. } => true,
        }
    }
}

/// How a container's stop signal is to be timed once its hook kind is known.
#[derive(Clone)]
pub(super) enum HoldRequest {
    /// At the delay plus `stagger`.
    Fixed { stagger: u32 },
    /// The adaptive hold from the delay (when the hook is the helper); `needs_helper`: the role
    /// makes `auto` choose the helper for it (a front proxy and the app behind it), rather than
    /// only holding adaptively when the helper runs anyway (docs/decisions.md).
    Adaptive {
        quiet: u32,
        cap: u32,
        stagger: u32,
        probe_periods: Vec<u32>,
        needs_helper: bool,
    },
    /// An app behind an adaptive proxy: until the proxy's listeners are gone, then `stagger`.
    AfterProxy {
        ports: Vec<u16>,
        until: u32,
        stagger: u32,
    },
}

impl HoldRequest {
    pub(super) fn needs_helper(&self) -> bool {
        match self {
            HoldRequest::Fixed { .. } => false,
            HoldRequest::Adaptive { needs_helper, .. } => *needs_helper,
            HoldRequest::AfterProxy { .. } => true,
        }
    }

    pub(super) fn stagger(&self) -> u32 {
        match self {
            HoldRequest::Fixed { stagger }
            | HoldRequest::Adaptive { stagger, .. }
            | HoldRequest::AfterProxy { stagger, .. } => *stagger,
        }
    }

    /// The timing of a helper hook whose delay (the floor) is `floor`.
    pub(super) fn helper_timing(self, floor: u32) -> Timing {
        match self {
            HoldRequest::Adaptive {
                quiet,
                cap,
                stagger,
                probe_periods,
                ..
            } if cap > floor => Timing::Adaptive {
                floor,
                quiet,
                cap,
                stagger,
                probe_periods,
            },
            HoldRequest::AfterProxy {
                ports,
                until,
                stagger,
            } => Timing::AfterProxy {
                floor,
                ports,
                until: until.max(floor),
                stagger,
            },
            other => Timing::Fixed {
                seconds: floor.saturating_add(other.stagger()),
            },
        }
    }
}

/// As `explain` says it: `at 10s`, `10-60s (until quiet for 3s)`, `15-65s (after the proxy's
/// listeners close, then 5s)`.
impl std::fmt::Display for Timing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Timing::Fixed { seconds } => write!(f, "at {seconds}s"),
            Timing::Adaptive { quiet, stagger, .. } => {
                write!(
                    f,
                    "{}-{}s (held until quiet for {quiet}s",
                    self.earliest(),
                    self.latest()
                )?;
                match stagger {
                    0 => f.write_str(")"),
                    s => write!(f, ", then {s}s)"),
                }
            }
            Timing::AfterProxy { stagger, .. } => write!(
                f,
                "{}-{}s (after the proxy's listeners close, then {stagger}s)",
                self.earliest(),
                self.latest()
            ),
            Timing::Recorded { earliest, latest } if earliest == latest => {
                write!(f, "at {earliest}s")
            }
            Timing::Recorded { earliest, latest } => {
                write!(f, "{earliest}-{latest}s (as recorded by an earlier run)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_floor_the_cap_and_the_stagger() {
        let fixed = Timing::Fixed { seconds: 10 };
        assert_eq!((fixed.earliest(), fixed.latest()), (10, 10));
        assert!(!fixed.is_adaptive());
        let proxy = Timing::Adaptive {
            floor: 10,
            quiet: 3,
            cap: 60,
            stagger: 0,
            probe_periods: vec![1],
        };
        assert_eq!((proxy.earliest(), proxy.latest()), (10, 60));
        assert_eq!(proxy.to_string(), "10-60s (held until quiet for 3s)");
        let app = Timing::AfterProxy {
            floor: 10,
            ports: vec![80],
            until: 60,
            stagger: 5,
        };
        assert_eq!((app.earliest(), app.latest()), (15, 65));
        assert!(app.is_adaptive());
        assert_eq!(
            app.to_string(),
            "15-65s (after the proxy's listeners close, then 5s)"
        );
        let saturated = Timing::Adaptive {
            floor: u32::MAX,
            quiet: 1,
            cap: u32::MAX,
            stagger: 5,
            probe_periods: vec![],
        };
        assert_eq!(saturated.latest(), u32::MAX);
        let recorded = Timing::Recorded {
            earliest: 10,
            latest: 60,
        };
        assert!(recorded.is_adaptive());
        assert_eq!((recorded.earliest(), recorded.latest()), (10, 60));
    }
}
