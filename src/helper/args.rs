//! Command-line parsing (std only). Every error names the argument that was wrong.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use super::net::{HttpUrl, parse_port};
use super::signal::parse_signal;
use crate::duration::parse_seconds;

/// Seconds added to `--delay` when `--max` is not given: room for waiting for idle ports, the
/// signalled process to exit and the chained hook.
pub const DEFAULT_MAX_EXTRA_SECONDS: u32 = 30;

/// What the command line asks for.
// Made once per run: a boxed `PrestopArgs` would save nothing worth its indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Version,
    Install { dir: PathBuf, then: AfterInstall },
    Prestop(PrestopArgs),
}

/// What `install` does once the binary is in place (`--then`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AfterInstall {
    /// Exit 0 (an init container, or a first container of a pod that must complete).
    #[default]
    Exit,
    /// Stay up until SIGTERM or SIGINT, then exit 0 (a first container of a pod whose
    /// containers are restarted: exiting would restart it in a loop).
    Sleep,
}

impl AfterInstall {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exit => "exit",
            Self::Sleep => "sleep",
        }
    }
}

/// The options of `drain-helper prestop`.
#[derive(Debug, Clone, Eq)]
pub struct PrestopArgs {
    /// `--delay`, then `--quiet ...` or `--follow ...`, then `--stagger`: when the signal
    /// phase begins.
    pub window: SignalWindow,
    /// `--notify`, in the order given.
    pub notify: Vec<HttpUrl>,
    /// `--wait-idle`, sorted and deduplicated; empty when not given.
    pub wait_idle: Vec<u16>,
    /// `--max`, seconds (default: the window's latest plus [`DEFAULT_MAX_EXTRA_SECONDS`]).
    pub max: u32,
    /// `--signal`, the signal number.
    pub signal: Option<i32>,
    /// `--fast-signal`: sent when `--max` runs out while the signalled process still drains
    /// (open streams), so that they end before SIGKILL and the hook exits 0. Needs `--signal`.
    pub fast_signal: Option<i32>,
    /// `--then-http-get`.
    pub then_http_get: Option<HttpUrl>,
    /// `--then-exec -- CMD ARGS...`: the program and its arguments (never empty when set).
    pub then_exec: Option<Vec<OsString>>,
    /// `--record PATH --role proxy|app`: append the drain record there at the end.
    pub record: Option<RecordArgs>,
}

impl PartialEq for PrestopArgs {
    fn eq(&self, other: &Self) -> bool {
        // Every field named, so a new one cannot be left out of the comparison.
        let PrestopArgs {
            window,
            notify,
            wait_idle,
            max,
            signal,
            fast_signal,
            then_http_get,
            then_exec,
            record,
        } = self;
        *window == other.window
            && *notify == other.notify
            && same_list(wait_idle, &other.wait_idle)
            && *max == other.max
            && *signal == other.signal
            && *fast_signal == other.fast_signal
            && *then_http_get == other.then_http_get
            && *then_exec == other.then_exec
            && *record == other.record
    }
}

/// `a == b` for two lists of numbers, without calling `memcmp` when both are empty. An empty
/// `Vec` points at a dangling address, and glibc's AVX-512 `memcmp` reads it with a masked
/// load whose suppressed page fault costs about 80 ns on this project's machines (a
/// one-element list: 2.5 ns); the planner compares such lists ten times per seed pod
/// (docs/benchmarks.md, "Empty lists").
pub(crate) fn same_list<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len() && (a.is_empty() || a == b)
}

/// A bad command line: the message names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

fn utf8(arg: &OsString) -> Result<&str, UsageError> {
    arg.to_str().ok_or_else(|| {
        usage(format!(
            "argument \"{}\" is not valid UTF-8",
            arg.to_string_lossy()
        ))
    })
}

/// Parses the arguments after the program name.
pub fn parse(args: &[OsString]) -> Result<Command, UsageError> {
    let Some(first) = args.first() else {
        return Err(usage("missing command (install or prestop)"));
    };
    match utf8(first)? {
        "-h" | "--help" | "help" => Ok(Command::Help),
        "-V" | "--version" | "version" => Ok(Command::Version),
        "install" => parse_install(&args[1..]),
        "prestop" => parse_prestop(&args[1..]),
        other => Err(usage(format!("unknown command \"{other}\""))),
    }
}

/// `install DIR [--then exit|sleep]`.
fn parse_install(args: &[OsString]) -> Result<Command, UsageError> {
    let (dir, rest) = match args {
        [] => return Err(usage("install: missing DIR")),
        [dir, rest @ ..] => (dir, rest),
    };
    let dir = match dir.to_str() {
        Some("-h" | "--help") if rest.is_empty() => return Ok(Command::Help),
        Some(flag) if flag.starts_with('-') => {
            return Err(usage(format!(
                "install: unknown option \"{flag}\" (DIR comes first)"
            )));
        }
        Some("") => return Err(usage("install: DIR is empty")),
        _ => PathBuf::from(dir),
    };
    let then = match rest {
        [] => AfterInstall::Exit,
        [flag, value] if flag == "--then" => match value.to_str() {
            Some("exit") => AfterInstall::Exit,
            Some("sleep") => AfterInstall::Sleep,
            _ => {
                return Err(usage(format!(
                    "install: --then \"{}\" is not exit or sleep",
                    value.to_string_lossy()
                )));
            }
        },
        [flag] if flag == "--then" => return Err(usage("install: --then needs exit or sleep")),
        [extra, ..] => {
            return Err(usage(format!(
                "install: unexpected argument \"{}\" (only DIR and --then exit|sleep are accepted)",
                extra.to_string_lossy()
            )));
        }
    };
    Ok(Command::Install { dir, then })
}

fn parse_prestop(args: &[OsString]) -> Result<Command, UsageError> {
    let mut delay = None;
    let mut notify = Vec::new();
    let mut wait_idle = None;
    let mut max = None;
    let mut signal = None;
    let mut fast_signal = None;
    let mut then_http_get = None;
    let mut then_exec = None;
    let mut quiet = None;
    let mut hold_max = None;
    let mut probe_every = None;
    let mut migrate = None;
    let mut follow = None;
    let mut follow_until = None;
    let mut stagger = None;
    let mut record_path = None;
    let mut record_role = None;

    let mut index = 0;
    while index < args.len() {
        let arg = utf8(&args[index])?;
        index += 1;
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        // `--flag=value` and `--flag value` are both accepted.
        let (flag, inline_value) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
            _ => (arg, None),
        };
        if flag == "--then-exec" {
            if inline_value.is_some() {
                return Err(usage(
                    "--then-exec takes no value: use --then-exec -- CMD ARGS...",
                ));
            }
            if args.get(index).and_then(|a| a.to_str()) != Some("--") {
                return Err(usage("--then-exec must be followed by -- and the command"));
            }
            let command = args[index + 1..].to_vec();
            if command.is_empty() {
                return Err(usage("--then-exec: missing command after --"));
            }
            if command[0].is_empty() {
                return Err(usage("--then-exec: the command is empty"));
            }
            then_exec = Some(command);
            break;
        }
        if !matches!(
            flag,
            "--delay"
                | "--notify"
                | "--wait-idle"
                | "--max"
                | "--signal"
                | "--fast-signal"
                | "--then-http-get"
                | "--quiet"
                | "--hold-max"
                | "--probe-every"
                | "--migrate"
                | "--follow"
                | "--follow-until"
                | "--stagger"
                | "--record"
                | "--role"
        ) {
            return Err(usage(format!("unknown option \"{arg}\"")));
        }
        let value = match inline_value {
            Some(value) => value,
            None => {
                let value = args
                    .get(index)
                    .ok_or_else(|| usage(format!("{flag}: missing value")))?;
                index += 1;
                utf8(value)?
            }
        };
        let once = |seen: bool| match seen {
            true => Err(usage(format!("{flag} given more than once"))),
            false => Ok(()),
        };
        match flag {
            "--delay" => {
                once(delay.is_some())?;
                delay = Some(seconds(flag, value)?);
            }
            "--max" => {
                once(max.is_some())?;
                max = Some(seconds(flag, value)?);
            }
            "--notify" => notify.push(url(flag, value)?),
            "--wait-idle" => {
                once(wait_idle.is_some())?;
                wait_idle = Some(ports(flag, value)?);
            }
            "--quiet" => {
                once(quiet.is_some())?;
                quiet = Some(seconds(flag, value)?);
            }
            "--hold-max" => {
                once(hold_max.is_some())?;
                hold_max = Some(seconds(flag, value)?);
            }
            "--probe-every" => {
                once(probe_every.is_some())?;
                probe_every = Some(hold::periods(flag, value)?);
            }
            "--migrate" => {
                once(migrate.is_some())?;
                migrate = Some(hold::migrate(flag, value)?);
            }
            "--follow" => {
                once(follow.is_some())?;
                follow = Some(ports(flag, value)?);
            }
            "--follow-until" => {
                once(follow_until.is_some())?;
                follow_until = Some(seconds(flag, value)?);
            }
            "--stagger" => {
                once(stagger.is_some())?;
                stagger = Some(seconds(flag, value)?);
            }
            "--record" => {
                once(record_path.is_some())?;
                record_path = Some(record::path(flag, value)?);
            }
            "--role" => {
                once(record_role.is_some())?;
                record_role = Some(record::role(flag, value)?);
            }
            "--signal" => {
                once(signal.is_some())?;
                signal = Some(parse_signal(value).map_err(|e| usage(format!("--signal: {e}")))?);
            }
            "--fast-signal" => {
                once(fast_signal.is_some())?;
                fast_signal =
                    Some(parse_signal(value).map_err(|e| usage(format!("--fast-signal: {e}")))?);
            }
            _ => {
                once(then_http_get.is_some())?;
                then_http_get = Some(url(flag, value)?);
            }
        }
    }

    let delay = delay.ok_or_else(|| usage("prestop: missing --delay"))?;
    let hold = hold_args(delay, quiet, hold_max, probe_every, migrate)?;
    let follow = follow_args(delay, follow, follow_until)?;
    let wait = match (hold, follow) {
        (Some(_), Some(_)) => {
            return Err(usage(
                "--quiet and --follow cannot be combined: a container either holds while traffic arrives or follows the proxy's listeners",
            ));
        }
        (Some(hold), None) => Wait::Hold(hold),
        (None, Some(follow)) => Wait::Follow(follow),
        (None, None) => Wait::Delay,
    };
    let window = SignalWindow {
        floor: delay,
        wait,
        stagger: stagger.unwrap_or(0),
    };
    check_migrate(window.hold(), signal, fast_signal)?;
    if fast_signal.is_some() && signal.is_none() {
        return Err(usage(
            "--fast-signal needs --signal: it is sent only when the process is still draining after the graceful signal",
        ));
    }
    let max = max.unwrap_or(window.latest().saturating_add(DEFAULT_MAX_EXTRA_SECONDS));
    Ok(Command::Prestop(PrestopArgs {
        window,
        notify,
        wait_idle: wait_idle.unwrap_or_default(),
        max,
        signal,
        fast_signal,
        then_http_get,
        then_exec,
        record: record::record_args(record_path, record_role)?,
    }))
}

mod hold;
pub use hold::{FollowArgs, HoldArgs, Migrate};
use hold::{check_migrate, follow_args, hold_args};

mod record;
pub use record::{MAX_RECORD_PATH_BYTES, RecordArgs, record_path_problem};

mod window;
pub use window::{SignalWindow, Wait};

#[cfg(feature = "webhook")]
mod render;
#[cfg(feature = "webhook")]
pub use render::render_install;

fn seconds(flag: &str, value: &str) -> Result<u32, UsageError> {
    parse_seconds(value).map_err(|e| usage(format!("{flag} \"{value}\": {e}")))
}

fn url(flag: &str, value: &str) -> Result<HttpUrl, UsageError> {
    HttpUrl::parse(value).map_err(|e| usage(format!("{flag} \"{value}\": {e}")))
}

/// The ports, sorted and without repeats. Insertion into a sorted list: a handful of ports, and
/// no sort routine in the static binary.
pub(super) fn ports(flag: &str, value: &str) -> Result<Vec<u16>, UsageError> {
    let mut ports: Vec<u16> = Vec::new();
    for part in value.split(',') {
        let part = part.trim();
        let port = parse_port(part).ok_or_else(|| {
            usage(format!(
                "{flag} \"{value}\": \"{part}\" is not a port (1-65535)"
            ))
        })?;
        if let Err(at) = ports.binary_search(&port) {
            ports.insert(at, port);
        }
    }
    Ok(ports)
}

#[cfg(test)]
mod tests;
