//! The planned timings the planner's tests expect, written as the helper's signal window.
#![allow(dead_code)]

use drain_webhook::helper::args::{FollowArgs, HoldArgs, SignalWindow, Wait};
use drain_webhook::plan::Timing;

/// The helper's adaptive hold from `floor`, until quiet for `quiet`, at `cap` at the latest,
/// then `stagger`.
pub fn held(floor: u32, quiet: u32, cap: u32, stagger: u32, probe_periods: Vec<u32>) -> Timing {
    let hold = HoldArgs {
        quiet,
        cap,
        probe_periods,
        migrate: None,
    };
    Timing::Helper(SignalWindow {
        floor,
        wait: Wait::Hold(hold),
        stagger,
    })
}

/// The helper following the proxy's `ports` from `floor`, at `until` at the latest, then
/// `stagger`.
pub fn following(floor: u32, ports: Vec<u16>, until: u32, stagger: u32) -> Timing {
    Timing::Helper(SignalWindow {
        floor,
        wait: Wait::Follow(FollowArgs { ports, until }),
        stagger,
    })
}

/// The helper's fixed delay.
pub fn helper_at(seconds: u32) -> Timing {
    Timing::Helper(SignalWindow::fixed(seconds))
}

/// The floor, cap and stagger of the helper's adaptive hold, when it holds.
pub fn hold_range(timing: &Timing) -> Option<(u32, u32, u32)> {
    let window = timing.window()?;
    Some((window.floor, window.hold()?.cap, window.stagger))
}

/// The ports the helper follows, when it follows the proxy.
pub fn followed_ports(timing: &Timing) -> Option<&[u16]> {
    match &timing.window()?.wait {
        Wait::Follow(follow) => Some(&follow.ports),
        _ => None,
    }
}

/// `timing`, its adaptive hold moving pinned clients off with `signal` at the floor.
pub fn migrating(mut timing: Timing, signal: &str) -> Timing {
    let signal = drain_webhook::helper::signal::parse_signal(signal).expect("a known signal");
    if let Timing::Helper(SignalWindow {
        wait: Wait::Hold(hold),
        ..
    }) = &mut timing
    {
        hold.migrate = Some(drain_webhook::helper::args::Migrate::Signal(signal));
    }
    timing
}
