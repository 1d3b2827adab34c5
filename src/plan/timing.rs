//! When a planned container gets its stop signal: at a fixed time, or at the end of the
//! helper's adaptive hold (DESIGN.md section 2, docs/decisions.md "The adaptive hold").

use serde::Serialize;

use crate::helper::args::{FollowArgs, HoldArgs, SignalWindow, Wait};

/// The stop-signal time of one planned container, in seconds after deletion (T0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timing {
    /// At `seconds`: the native sleep (hooks `sleep` and `native`).
    Fixed { seconds: u32 },
    /// The helper's signal window, as its arguments say it: from the floor (D), at once, after
    /// the adaptive hold (until quiet for Q, at M at the latest) or after the front proxy's
    /// listeners close (at its bound at the latest); then the stagger (S).
    Helper(SignalWindow),
    /// A container an earlier run planned: only the range its record keeps is known.
    Recorded { earliest: u32, latest: u32 },
}

impl Timing {
    /// The earliest time of the stop signal.
    pub fn earliest(&self) -> u32 {
        match self {
            Timing::Fixed { seconds } => *seconds,
            Timing::Helper(window) => window.earliest(),
            Timing::Recorded { earliest, .. } => *earliest,
        }
    }

    /// The latest time of the stop signal: what the grace period must cover (plus B).
    pub fn latest(&self) -> u32 {
        match self {
            Timing::Fixed { seconds } => *seconds,
            Timing::Helper(window) => window.latest(),
            Timing::Recorded { latest, .. } => *latest,
        }
    }

    /// Whether the signal follows the traffic (or the proxy) rather than a fixed time.
    pub fn is_adaptive(&self) -> bool {
        match self {
            Timing::Fixed { .. } => false,
            Timing::Helper(window) => window.wait != Wait::Delay,
            Timing::Recorded { earliest, latest } => earliest != latest,
        }
    }

    /// The helper's signal window, when the hook is the helper's and this run plans it.
    pub fn window(&self) -> Option<&SignalWindow> {
        match self {
            Timing::Helper(window) => Some(window),
            _ => None,
        }
    }

    /// The adaptive hold, when the helper holds while traffic arrives.
    pub fn hold(&self) -> Option<&HoldArgs> {
        self.window().and_then(SignalWindow::hold)
    }
}

/// `explain -o json`'s shape of a [`Timing`], as every earlier version wrote it: a fixed
/// helper window is `fixed`, a hold `adaptive`, a follow `afterProxy` (keys kept as they were,
/// `probe_periods` included).
#[derive(Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
enum TimingJson<'a> {
    Fixed {
        seconds: u32,
    },
    Adaptive {
        floor: u32,
        quiet: u32,
        cap: u32,
        stagger: u32,
        #[serde(skip_serializing_if = "<[u32]>::is_empty")]
        probe_periods: &'a [u32],
    },
    AfterProxy {
        floor: u32,
        ports: &'a [u16],
        until: u32,
        stagger: u32,
    },
    Recorded {
        earliest: u32,
        latest: u32,
    },
}

impl Serialize for Timing {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let json = match self {
            Timing::Fixed { seconds } => TimingJson::Fixed { seconds: *seconds },
            Timing::Helper(window) => match &window.wait {
                Wait::Delay => TimingJson::Fixed {
                    seconds: window.earliest(),
                },
                Wait::Hold(hold) => TimingJson::Adaptive {
                    floor: window.floor,
                    quiet: hold.quiet,
                    cap: hold.cap,
                    stagger: window.stagger,
                    probe_periods: &hold.probe_periods,
                },
                Wait::Follow(FollowArgs { ports, until }) => TimingJson::AfterProxy {
                    floor: window.floor,
                    ports,
                    until: *until,
                    stagger: window.stagger,
                },
            },
            Timing::Recorded { earliest, latest } => TimingJson::Recorded {
                earliest: *earliest,
                latest: *latest,
            },
        };
        json.serialize(serializer)
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
        let window = match self {
            HoldRequest::Adaptive {
                quiet,
                cap,
                stagger,
                probe_periods,
                ..
            } if cap > floor => SignalWindow {
                floor,
                wait: Wait::Hold(HoldArgs {
                    quiet,
                    cap,
                    probe_periods,
                    migrate: None,
                }),
                stagger,
            },
            HoldRequest::AfterProxy {
                ports,
                until,
                stagger,
            } => SignalWindow {
                floor,
                wait: Wait::Follow(FollowArgs {
                    ports,
                    until: until.max(floor),
                }),
                stagger,
            },
            // A fixed delay: the stagger is part of `--delay`, as every earlier version wrote it.
            other => SignalWindow::fixed(floor.saturating_add(other.stagger())),
        };
        Timing::Helper(window)
    }
}

/// As `explain` says it: `at 10s`, `10-60s (until quiet for 3s)`, `15-65s (after the proxy's
/// listeners close, then 5s)`.
impl std::fmt::Display for Timing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (earliest, latest) = (self.earliest(), self.latest());
        match self {
            Timing::Fixed { seconds } => write!(f, "at {seconds}s"),
            Timing::Helper(window) => match &window.wait {
                Wait::Delay => write!(f, "at {earliest}s"),
                Wait::Hold(hold) => {
                    write!(
                        f,
                        "{earliest}-{latest}s (held until quiet for {}s",
                        hold.quiet
                    )?;
                    match window.stagger {
                        0 => f.write_str(")"),
                        s => write!(f, ", then {s}s)"),
                    }
                }
                Wait::Follow(_) => write!(
                    f,
                    "{earliest}-{latest}s (after the proxy's listeners close, then {}s)",
                    window.stagger
                ),
            },
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

    fn held(floor: u32, cap: u32, stagger: u32, probe_periods: Vec<u32>) -> Timing {
        let hold = HoldArgs {
            quiet: 3,
            cap,
            probe_periods,
            migrate: None,
        };
        let wait = Wait::Hold(hold);
        Timing::Helper(SignalWindow {
            floor,
            wait,
            stagger,
        })
    }

    #[test]
    fn ranges_cover_the_floor_the_cap_and_the_stagger() {
        let fixed = Timing::Fixed { seconds: 10 };
        assert_eq!((fixed.earliest(), fixed.latest()), (10, 10));
        assert!(!fixed.is_adaptive());
        let helper_fixed = Timing::Helper(SignalWindow::fixed(10));
        assert_eq!((helper_fixed.earliest(), helper_fixed.latest()), (10, 10));
        assert!(!helper_fixed.is_adaptive());
        assert_eq!(helper_fixed.to_string(), "at 10s");
        let proxy = held(10, 60, 0, vec![1]);
        assert_eq!((proxy.earliest(), proxy.latest()), (10, 60));
        assert_eq!(proxy.to_string(), "10-60s (held until quiet for 3s)");
        let app = Timing::Helper(SignalWindow {
            floor: 10,
            wait: Wait::Follow(FollowArgs {
                ports: vec![80],
                until: 60,
            }),
            stagger: 5,
        });
        assert_eq!((app.earliest(), app.latest()), (15, 65));
        assert!(app.is_adaptive());
        assert_eq!(
            app.to_string(),
            "15-65s (after the proxy's listeners close, then 5s)"
        );
        let saturated = held(u32::MAX, u32::MAX, 5, vec![]);
        assert_eq!(saturated.latest(), u32::MAX);
        let recorded = Timing::Recorded {
            earliest: 10,
            latest: 60,
        };
        assert!(recorded.is_adaptive());
        assert_eq!((recorded.earliest(), recorded.latest()), (10, 60));
    }

    /// explain's JSON keeps the shapes (and keys) every earlier version wrote.
    #[test]
    fn json_keeps_the_earlier_shapes() {
        let json = |timing: &Timing| serde_json::to_string(timing).unwrap();
        assert_eq!(
            json(&Timing::Helper(SignalWindow::fixed(15))),
            r#"{"kind":"fixed","seconds":15}"#
        );
        assert_eq!(
            json(&held(10, 60, 5, vec![2, 5])),
            r#"{"kind":"adaptive","floor":10,"quiet":3,"cap":60,"stagger":5,"probe_periods":[2,5]}"#
        );
        assert_eq!(
            json(&held(10, 60, 0, vec![])),
            r#"{"kind":"adaptive","floor":10,"quiet":3,"cap":60,"stagger":0}"#
        );
        let follow = Timing::Helper(SignalWindow {
            floor: 10,
            wait: Wait::Follow(FollowArgs {
                ports: vec![80, 443],
                until: 60,
            }),
            stagger: 5,
        });
        assert_eq!(
            json(&follow),
            r#"{"kind":"afterProxy","floor":10,"ports":[80,443],"until":60,"stagger":5}"#
        );
        let recorded = Timing::Recorded {
            earliest: 10,
            latest: 60,
        };
        assert_eq!(
            json(&recorded),
            r#"{"kind":"recorded","earliest":10,"latest":60}"#
        );
    }
}
