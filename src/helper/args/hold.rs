//! The options of the adaptive hold and the follow (`--quiet`, `--hold-max`, `--probe-every`,
//! `--migrate`, `--follow`, `--follow-until`): their types and the checks made once all are
//! read.

use super::{UsageError, seconds, usage};
use crate::helper::net::HttpUrl;
use crate::helper::signal::{parse_signal, signal_name};

/// The adaptive hold: released once no new connection arrived for `quiet` seconds (beyond
/// what the probes open), never before `--delay`, never after `cap`.
#[derive(Debug, Clone, Eq)]
pub struct HoldArgs {
    /// `--quiet`, seconds (at least 1).
    pub quiet: u32,
    /// `--hold-max`, seconds from the start of the hook (at least `--delay`).
    pub cap: u32,
    /// `--probe-every`: the period in seconds of each probe that opens a connection into the
    /// pod (httpGet, tcpSocket, grpc), in the order given; one entry per probe.
    pub probe_periods: Vec<u32>,
    /// `--migrate`: once the hold has reached `--delay` and still holds, ask the front proxy
    /// (once) to end its existing connections gracefully while it keeps listening.
    pub migrate: Option<Migrate>,
}

impl PartialEq for HoldArgs {
    fn eq(&self, other: &Self) -> bool {
        // Every field named, so a new one cannot be left out of the comparison.
        let HoldArgs {
            quiet,
            cap,
            probe_periods,
            migrate,
        } = self;
        *quiet == other.quiet
            && *cap == other.cap
            && super::same_list(probe_periods, &other.probe_periods)
            && *migrate == other.migrate
    }
}

/// How the hold asks for the migration (docs/helper.md, "Migration at the floor").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Migrate {
    /// Send this signal to PID 1 of the container, as `--signal` does (nginx: SIGHUP).
    Signal(i32),
    /// POST to this URL, as `--notify` does (an app that can stop keep-alive itself).
    Post(HttpUrl),
}

/// As `explain` says it: `SIGHUP`, `POST http://127.0.0.1:8080/drain` (the webhook's only).
#[cfg(feature = "webhook")]
impl std::fmt::Display for Migrate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Migrate::Signal(signal) => f.write_str(&super::render::signal_text(*signal)),
            Migrate::Post(url) => write!(f, "POST {url}"),
        }
    }
}

/// `--migrate SIGNAL` or `--migrate http://IP:PORT/PATH`.
pub(super) fn migrate(flag: &str, value: &str) -> Result<Migrate, UsageError> {
    if value.contains("://") {
        return HttpUrl::parse(value)
            .map(Migrate::Post)
            .map_err(|e| usage(format!("{flag} \"{value}\": {e}")));
    }
    let signal = parse_signal(value).map_err(|e| {
        usage(format!(
            "{flag}: {e}; give the signal the process reloads on (nginx: SIGHUP) or an http://IP:PORT/PATH to POST"
        ))
    })?;
    if signal == libc::SIGKILL || signal == libc::SIGSTOP {
        return Err(usage(format!(
            "{flag} {}: no process can handle it, so it would stop PID 1 rather than move its connections; give the signal the process reloads on (nginx: SIGHUP) or an http://IP:PORT/PATH to POST",
            signal_name(signal)
        )));
    }
    Ok(Migrate::Signal(signal))
}

/// A migration signal that is also the graceful or the fast stop would stop the process at
/// the floor, closing its listeners: refused.
pub(super) fn check_migrate(
    hold: Option<&HoldArgs>,
    signal: Option<i32>,
    fast_signal: Option<i32>,
) -> Result<(), UsageError> {
    let Some(Migrate::Signal(migrate)) = hold.and_then(|hold| hold.migrate.as_ref()) else {
        return Ok(());
    };
    for (flag, stop) in [("--signal", signal), ("--fast-signal", fast_signal)] {
        if stop == Some(*migrate) {
            return Err(usage(format!(
                "--migrate {name} is also {flag}: a migration must keep the listeners open, so it cannot be the stop signal (nginx: --migrate SIGHUP --signal SIGQUIT)",
                name = signal_name(*migrate)
            )));
        }
    }
    Ok(())
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
    migrate: Option<Migrate>,
) -> Result<Option<HoldArgs>, UsageError> {
    let (quiet, cap) = match (quiet, hold_max) {
        (None, None) if migrate.is_some() => {
            return Err(usage(
                "--migrate needs --quiet and --hold-max (it runs during the adaptive hold, once --delay is reached and traffic still arrives)",
            ));
        }
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
        migrate,
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
