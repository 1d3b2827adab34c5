//! The options of the adaptive hold and the follow (`--quiet`, `--hold-max`, `--probe-every`,
//! `--follow`, `--follow-until`): their types and the checks made once all are read.

use super::{UsageError, seconds, usage};

/// The adaptive hold: released once no new connection arrived for `quiet` seconds (beyond
/// what the probes open), never before `--delay`, never after `cap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldArgs {
    /// `--quiet`, seconds (at least 1).
    pub quiet: u32,
    /// `--hold-max`, seconds from the start of the hook (at least `--delay`).
    pub cap: u32,
    /// `--probe-every`: the period in seconds of each probe that opens a connection into the
    /// pod (httpGet, tcpSocket, grpc), in the order given; one entry per probe.
    pub probe_periods: Vec<u32>,
}

/// Holding until the front proxy's listeners are gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowArgs {
    /// `--follow`, sorted and deduplicated.
    pub ports: Vec<u16>,
    /// `--follow-until`, seconds from the start of the hook (at least `--delay`).
    pub until: u32,
}

pub(super) fn hold_args(
    delay: u32,
    quiet: Option<u32>,
    hold_max: Option<u32>,
    probe_every: Option<Vec<u32>>,
) -> Result<Option<HoldArgs>, UsageError> {
    let (quiet, cap) = match (quiet, hold_max) {
        (None, None) if probe_every.is_some() => {
            return Err(usage(
                "--probe-every needs --quiet and --hold-max (it only discounts probes from the adaptive hold)",
            ));
        }
        (None, None) => return Ok(None),
        (Some(quiet), Some(cap)) => (quiet, cap),
        _ => return Err(usage("--quiet and --hold-max go together: give both")),
    };
    if quiet == 0 {
        return Err(usage("--quiet must be at least 1s"));
    }
    if cap < delay {
        return Err(usage(format!(
            "--hold-max {cap}s is below --delay {delay}s: the hold lasts at least the delay, so its cap must be at least that"
        )));
    }
    Ok(Some(HoldArgs {
        quiet,
        cap,
        probe_periods: probe_every.unwrap_or_default(),
    }))
}

pub(super) fn follow_args(
    delay: u32,
    ports: Option<Vec<u16>>,
    until: Option<u32>,
) -> Result<Option<FollowArgs>, UsageError> {
    match (ports, until) {
        (None, None) => Ok(None),
        (Some(ports), Some(until)) if until >= delay => Ok(Some(FollowArgs { ports, until })),
        (Some(_), Some(until)) => Err(usage(format!(
            "--follow-until {until}s is below --delay {delay}s: the follow begins after the delay, so its bound must be at least that"
        ))),
        _ => Err(usage("--follow and --follow-until go together: give both")),
    }
}

/// Probe periods in the order given (two probes of the same period are two probes), each at
/// least one second, as the API server requires of `periodSeconds`.
pub(super) fn periods(flag: &str, value: &str) -> Result<Vec<u32>, UsageError> {
    let mut periods = Vec::new();
    for part in value.split(',') {
        let period = seconds(flag, part.trim())?;
        if period == 0 {
            return Err(usage(format!(
                "{flag} \"{value}\": a probe period is at least 1s"
            )));
        }
        periods.push(period);
    }
    Ok(periods)
}
