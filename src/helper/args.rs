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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Version,
    Install { dir: PathBuf },
    Prestop(PrestopArgs),
}

/// The options of `drain-helper prestop`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrestopArgs {
    /// `--delay`, seconds.
    pub delay: u32,
    /// `--notify`, in the order given.
    pub notify: Vec<HttpUrl>,
    /// `--wait-idle`, sorted and deduplicated; empty when not given.
    pub wait_idle: Vec<u16>,
    /// `--max`, seconds (default: delay + [`DEFAULT_MAX_EXTRA_SECONDS`]).
    pub max: u32,
    /// `--signal`, the signal number.
    pub signal: Option<i32>,
    /// `--then-http-get`.
    pub then_http_get: Option<HttpUrl>,
    /// `--then-exec -- CMD ARGS...`: the program and its arguments (never empty when set).
    pub then_exec: Option<Vec<OsString>>,
    /// `--quiet Q --hold-max M [--probe-every P,...]`: after the delay, hold while new
    /// connections still arrive in the pod (docs/helper.md, "The adaptive hold").
    pub hold: Option<HoldArgs>,
    /// `--follow PORTS --follow-until T`: after the delay, hold until no socket listens on
    /// PORTS any more (the front proxy has begun its graceful stop), at most until T.
    pub follow: Option<FollowArgs>,
    /// `--stagger S`, seconds slept after the hold (or the follow) ends; 0 when not given.
    pub stagger: u32,
}

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

impl PrestopArgs {
    /// The latest time, in seconds from the start of the hook, at which the signal phase
    /// begins: the end of the delay, the hold's cap or the follow's bound, plus the stagger.
    pub fn latest_signal(&self) -> u32 {
        let held = match (&self.hold, &self.follow) {
            (Some(hold), _) => hold.cap,
            (None, Some(follow)) => follow.until,
            (None, None) => self.delay,
        };
        held.saturating_add(self.stagger)
    }
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

fn parse_install(args: &[OsString]) -> Result<Command, UsageError> {
    match args {
        [] => Err(usage("install: missing DIR")),
        [dir] => match dir.to_str() {
            Some("-h" | "--help") => Ok(Command::Help),
            Some(flag) if flag.starts_with('-') => {
                Err(usage(format!("install: unknown option \"{flag}\"")))
            }
            Some("") => Err(usage("install: DIR is empty")),
            _ => Ok(Command::Install {
                dir: PathBuf::from(dir),
            }),
        },
        [_, extra, ..] => Err(usage(format!(
            "install: unexpected argument \"{}\" (only DIR is accepted)",
            extra.to_string_lossy()
        ))),
    }
}

fn parse_prestop(args: &[OsString]) -> Result<Command, UsageError> {
    let mut delay = None;
    let mut notify = Vec::new();
    let mut wait_idle = None;
    let mut max = None;
    let mut signal = None;
    let mut then_http_get = None;
    let mut then_exec = None;
    let mut quiet = None;
    let mut hold_max = None;
    let mut probe_every = None;
    let mut follow = None;
    let mut follow_until = None;
    let mut stagger = None;

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
                | "--then-http-get"
                | "--quiet"
                | "--hold-max"
                | "--probe-every"
                | "--follow"
                | "--follow-until"
                | "--stagger"
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
                probe_every = Some(periods(flag, value)?);
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
            "--signal" => {
                once(signal.is_some())?;
                signal = Some(parse_signal(value).map_err(|e| usage(format!("--signal: {e}")))?);
            }
            _ => {
                once(then_http_get.is_some())?;
                then_http_get = Some(url(flag, value)?);
            }
        }
    }

    let delay = delay.ok_or_else(|| usage("prestop: missing --delay"))?;
    let hold = hold_args(delay, quiet, hold_max, probe_every)?;
    let follow = follow_args(delay, follow, follow_until)?;
    if hold.is_some() && follow.is_some() {
        return Err(usage(
            "--quiet and --follow cannot be combined: a container either holds while traffic arrives or follows the proxy's listeners",
        ));
    }
    let mut parsed = PrestopArgs {
        delay,
        notify,
        wait_idle: wait_idle.unwrap_or_default(),
        max: 0,
        signal,
        then_http_get,
        then_exec,
        hold,
        follow,
        stagger: stagger.unwrap_or(0),
    };
    parsed.max = max.unwrap_or(
        parsed
            .latest_signal()
            .saturating_add(DEFAULT_MAX_EXTRA_SECONDS),
    );
    Ok(Command::Prestop(parsed))
}

fn hold_args(
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

fn follow_args(
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

/// The command line that [`parse`] reads back as `Command::Install { dir }`.
#[cfg(feature = "webhook")]
pub fn render_install(dir: &str) -> Vec<String> {
    vec!["install".to_owned(), dir.to_owned()]
}

#[cfg(feature = "webhook")]
impl PrestopArgs {
    /// The command line (after the program name) that [`parse`] reads back as exactly these
    /// arguments: the webhook writes preStop hooks with it, so a hook it plans is one the helper
    /// accepts. `--max` is always written; `--then-exec` comes last, as the parser requires.
    pub fn to_args(&self) -> Vec<String> {
        use crate::duration::format_seconds;
        let mut args = vec![
            "prestop".to_owned(),
            "--delay".to_owned(),
            format_seconds(self.delay),
            "--max".to_owned(),
            format_seconds(self.max),
        ];
        for url in &self.notify {
            args.extend(["--notify".to_owned(), url.to_string()]);
        }
        if !self.wait_idle.is_empty() {
            let ports: Vec<String> = self.wait_idle.iter().map(u16::to_string).collect();
            args.extend(["--wait-idle".to_owned(), ports.join(",")]);
        }
        if let Some(signal) = self.signal {
            // A number the helper has no name for is written as the number.
            let name = super::signal::signal_name(signal);
            let text = if name.starts_with("SIG") {
                name
            } else {
                signal.to_string()
            };
            args.extend(["--signal".to_owned(), text]);
        }
        if let Some(hold) = &self.hold {
            args.extend([
                "--quiet".to_owned(),
                format_seconds(hold.quiet),
                "--hold-max".to_owned(),
                format_seconds(hold.cap),
            ]);
            if !hold.probe_periods.is_empty() {
                let periods: Vec<String> = hold
                    .probe_periods
                    .iter()
                    .map(|p| format_seconds(*p))
                    .collect();
                args.extend(["--probe-every".to_owned(), periods.join(",")]);
            }
        }
        if let Some(follow) = &self.follow {
            let ports: Vec<String> = follow.ports.iter().map(u16::to_string).collect();
            args.extend([
                "--follow".to_owned(),
                ports.join(","),
                "--follow-until".to_owned(),
                format_seconds(follow.until),
            ]);
        }
        if self.stagger > 0 {
            args.extend(["--stagger".to_owned(), format_seconds(self.stagger)]);
        }
        if let Some(url) = &self.then_http_get {
            args.extend(["--then-http-get".to_owned(), url.to_string()]);
        }
        if let Some(command) = &self.then_exec {
            args.extend(["--then-exec".to_owned(), "--".to_owned()]);
            args.extend(
                command
                    .iter()
                    .map(|word| word.to_string_lossy().into_owned()),
            );
        }
        args
    }
}

fn seconds(flag: &str, value: &str) -> Result<u32, UsageError> {
    parse_seconds(value).map_err(|e| usage(format!("{flag} \"{value}\": {e}")))
}

fn url(flag: &str, value: &str) -> Result<HttpUrl, UsageError> {
    HttpUrl::parse(value).map_err(|e| usage(format!("{flag} \"{value}\": {e}")))
}

/// The ports, sorted and without repeats. Insertion into a sorted list: a handful of ports, and
/// no sort routine in the static binary.
fn ports(flag: &str, value: &str) -> Result<Vec<u16>, UsageError> {
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

/// Probe periods in the order given (two probes of the same period are two probes), each at
/// least one second, as the API server requires of `periodSeconds`.
fn periods(flag: &str, value: &str) -> Result<Vec<u32>, UsageError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, UsageError> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse(&args)
    }

    fn prestop(args: &[&str]) -> PrestopArgs {
        let mut all = vec!["prestop"];
        all.extend_from_slice(args);
        match parse_strs(&all) {
            Ok(Command::Prestop(parsed)) => parsed,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        match parse_strs(args) {
            Err(UsageError(message)) => message,
            Ok(command) => panic!("{args:?} was accepted as {command:?}"),
        }
    }

    #[test]
    fn minimal_prestop_uses_defaults() {
        let parsed = prestop(&["--delay", "15"]);
        assert_eq!(
            parsed,
            PrestopArgs {
                delay: 15,
                notify: vec![],
                wait_idle: vec![],
                max: 45,
                signal: None,
                then_http_get: None,
                then_exec: None,
                hold: None,
                follow: None,
                stagger: 0,
            }
        );
    }

    #[test]
    fn adaptive_hold_with_probes_and_stagger() {
        let parsed = prestop(&[
            "--delay",
            "10",
            "--quiet=3s",
            "--hold-max",
            "1m",
            "--probe-every",
            "1,10s, 1",
            "--stagger",
            "5",
        ]);
        assert_eq!(
            parsed.hold,
            Some(HoldArgs {
                quiet: 3,
                cap: 60,
                probe_periods: vec![1, 10, 1],
            })
        );
        assert_eq!(parsed.stagger, 5);
        assert_eq!(parsed.follow, None);
        // The default bound covers the cap and the stagger, then the usual 30s.
        assert_eq!(parsed.latest_signal(), 65);
        assert_eq!(parsed.max, 95);
    }

    #[test]
    fn follow_the_proxy_listeners() {
        let parsed = prestop(&[
            "--delay",
            "15",
            "--follow",
            "8080,80,8080",
            "--follow-until",
            "60",
            "--stagger",
            "5",
        ]);
        assert_eq!(
            parsed.follow,
            Some(FollowArgs {
                ports: vec![80, 8080],
                until: 60,
            })
        );
        assert_eq!(parsed.hold, None);
        assert_eq!(parsed.max, 95);
        // A fixed delay with a stagger: the signal at D + S.
        let fixed = prestop(&["--delay", "10", "--stagger", "5"]);
        assert_eq!((fixed.latest_signal(), fixed.max), (15, 45));
    }

    #[test]
    fn hold_and_follow_errors_say_what_to_give() {
        let cases: &[(&[&str], &str)] = &[
            (&["--quiet", "3"], "give both"),
            (&["--hold-max", "60"], "give both"),
            (&["--quiet", "0", "--hold-max", "60"], "at least 1s"),
            (
                &["--quiet", "3", "--hold-max", "5"],
                "--hold-max 5s is below --delay 10s",
            ),
            (&["--probe-every", "1"], "--probe-every needs --quiet"),
            (
                &["--quiet", "3", "--hold-max", "60", "--probe-every", "1,0"],
                "at least 1s",
            ),
            (
                &["--quiet", "3", "--hold-max", "60", "--probe-every", "1,x"],
                "--probe-every \"x\"",
            ),
            (&["--follow", "80"], "give both"),
            (&["--follow-until", "60"], "give both"),
            (
                &["--follow", "http", "--follow-until", "60"],
                "--follow \"http\"",
            ),
            (
                &["--follow", "80", "--follow-until", "9"],
                "--follow-until 9s is below --delay 10s",
            ),
            (
                &[
                    "--quiet",
                    "3",
                    "--hold-max",
                    "60",
                    "--follow",
                    "80",
                    "--follow-until",
                    "60",
                ],
                "cannot be combined",
            ),
            (&["--stagger", "soon"], "--stagger \"soon\""),
            (&["--stagger", "1", "--stagger", "2"], "more than once"),
        ];
        for (extra, expected) in cases {
            let mut args = vec!["prestop", "--delay", "10"];
            args.extend_from_slice(extra);
            let message = error(&args);
            assert!(
                message.contains(expected),
                "{args:?}: {message:?} should mention {expected:?}"
            );
        }
    }

    #[test]
    fn full_prestop() {
        let parsed = prestop(&[
            "--delay",
            "1m30s",
            "--notify",
            "http://127.0.0.1:8080/drain",
            "--notify=http://[::1]:9090/quiesce",
            "--wait-idle",
            "8080,443, 8080",
            "--max=2m",
            "--signal",
            "SIGQUIT",
            "--then-http-get",
            "http://127.0.0.1:8080/shutdown",
            "--then-exec",
            "--",
            "/bin/sh",
            "-c",
            "--delay 3",
        ]);
        assert_eq!(parsed.delay, 90);
        assert_eq!(parsed.max, 120);
        assert_eq!(parsed.notify.len(), 2);
        assert_eq!(parsed.notify[1].to_string(), "http://[::1]:9090/quiesce");
        assert_eq!(parsed.wait_idle, vec![443, 8080]);
        assert_eq!(parsed.signal, Some(libc::SIGQUIT));
        assert_eq!(
            parsed.then_http_get.map(|u| u.path),
            Some("/shutdown".to_string())
        );
        let exec: Vec<OsString> = ["/bin/sh", "-c", "--delay 3"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(parsed.then_exec, Some(exec));
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse_strs(&["--help"]), Ok(Command::Help));
        assert_eq!(parse_strs(&["-h"]), Ok(Command::Help));
        assert_eq!(parse_strs(&["prestop", "--help"]), Ok(Command::Help));
        assert_eq!(parse_strs(&["install", "--help"]), Ok(Command::Help));
        assert_eq!(parse_strs(&["--version"]), Ok(Command::Version));
        assert_eq!(parse_strs(&["-V"]), Ok(Command::Version));
    }

    #[test]
    fn install_takes_one_dir() {
        assert_eq!(
            parse_strs(&["install", "/.drain"]),
            Ok(Command::Install {
                dir: PathBuf::from("/.drain")
            })
        );
        assert!(error(&["install"]).contains("missing DIR"));
        assert!(error(&["install", "/a", "/b"]).contains("\"/b\""));
        assert!(error(&["install", "--force"]).contains("--force"));
    }

    #[test]
    fn errors_name_the_bad_argument() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "missing command"),
            (&["frobnicate"], "frobnicate"),
            (&["prestop"], "--delay"),
            (&["prestop", "--delay"], "--delay: missing value"),
            (&["prestop", "--delay", "soon"], "--delay \"soon\""),
            (&["prestop", "--delay", "-1"], "--delay"),
            (
                &["prestop", "--delay", "1", "--delay", "2"],
                "more than once",
            ),
            (&["prestop", "--delay", "1", "--bogus"], "--bogus"),
            (&["prestop", "--delay", "1", "--max", "1y"], "--max"),
            (
                &["prestop", "--delay", "1", "--notify", "http://localhost/x"],
                "--notify",
            ),
            (
                &["prestop", "--delay", "1", "--wait-idle", "80,http"],
                "\"http\"",
            ),
            (
                &["prestop", "--delay", "1", "--wait-idle", "0"],
                "--wait-idle",
            ),
            (
                &["prestop", "--delay", "1", "--wait-idle", ""],
                "--wait-idle",
            ),
            (
                &["prestop", "--delay", "1", "--wait-idle", "70000"],
                "--wait-idle",
            ),
            (
                &["prestop", "--delay", "1", "--signal", "SIGFOO"],
                "--signal",
            ),
            (
                &[
                    "prestop",
                    "--delay",
                    "1",
                    "--then-http-get",
                    "https://1.2.3.4/",
                ],
                "--then-http-get",
            ),
            (&["prestop", "--delay", "1", "--then-exec"], "--then-exec"),
            (
                &["prestop", "--delay", "1", "--then-exec", "ls"],
                "--then-exec",
            ),
            (
                &["prestop", "--delay", "1", "--then-exec", "--"],
                "--then-exec",
            ),
            (
                &["prestop", "--delay", "1", "--then-exec", "--", ""],
                "--then-exec",
            ),
            (
                &["prestop", "--delay", "1", "--then-exec=x", "--", "ls"],
                "--then-exec",
            ),
            (&["prestop", "stray"], "\"stray\""),
        ];
        for (args, expected) in cases {
            let message = error(args);
            assert!(
                message.contains(expected),
                "{args:?}: {message:?} should mention {expected:?}"
            );
        }
    }

    #[test]
    fn then_exec_keeps_everything_after_the_separator() {
        let parsed = prestop(&[
            "--delay",
            "1",
            "--then-exec",
            "--",
            "echo",
            "--max",
            "9",
            "--",
        ]);
        // `--max 9` after the separator belongs to the command, not to the helper.
        assert_eq!(parsed.max, 31);
        let exec: Vec<OsString> = ["echo", "--max", "9", "--"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(parsed.then_exec, Some(exec));
    }

    #[test]
    fn max_defaults_to_delay_plus_thirty_seconds_and_never_overflows() {
        assert_eq!(prestop(&["--delay", "0"]).max, 30);
        assert_eq!(prestop(&["--delay", "86400"]).max, 86_430);
        assert_eq!(prestop(&["--delay", "5", "--max", "1"]).max, 1);
    }

    #[test]
    fn non_utf8_arguments_are_errors_except_in_the_command() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![b'-', 0xff]);
        let args = vec![OsString::from("prestop"), bad.clone()];
        assert!(parse(&args).is_err());
        let args = vec![
            OsString::from("prestop"),
            OsString::from("--delay"),
            OsString::from("1"),
            OsString::from("--then-exec"),
            OsString::from("--"),
            OsString::from("/bin/echo"),
            bad.clone(),
        ];
        match parse(&args) {
            Ok(Command::Prestop(parsed)) => {
                assert_eq!(parsed.then_exec.unwrap()[1], bad);
            }
            other => panic!("{other:?}"),
        }
    }

    /// Whatever the webhook renders, the helper reads back as the same arguments: odd paths
    /// and query strings, IPv4 and IPv6 loopback, large ports, any signal, any exec words.
    #[cfg(feature = "webhook")]
    mod render_then_parse {
        use super::*;
        use crate::helper::net::HttpUrl;
        use proptest::prelude::*;
        use std::net::{IpAddr, Ipv6Addr, SocketAddr};

        fn url() -> impl Strategy<Value = HttpUrl> {
            (
                prop_oneof![
                    any::<[u8; 4]>().prop_map(IpAddr::from),
                    Just(IpAddr::V6(Ipv6Addr::LOCALHOST)),
                    any::<[u16; 8]>().prop_map(|s| IpAddr::V6(Ipv6Addr::from(s))),
                ],
                1u16..=u16::MAX,
                // Path and query: anything the helper's URL rules allow.
                "/[!-~&&[^#]]{0,24}",
            )
                .prop_map(|(ip, port, path)| HttpUrl {
                    addr: SocketAddr::new(ip, port),
                    path,
                })
        }

        /// A hold or a follow (never both, as the parser requires), bounds at least the delay.
        fn timing(delay: u32) -> impl Strategy<Value = (Option<HoldArgs>, Option<FollowArgs>)> {
            let room = crate::duration::MAX_SECONDS - delay;
            prop_oneof![
                Just((None, None)),
                (
                    1u32..=600,
                    0..=room,
                    prop::collection::vec(1u32..=300, 0..3)
                )
                    .prop_map(move |(quiet, extra, probe_periods)| {
                        let hold = HoldArgs {
                            quiet,
                            cap: delay + extra,
                            probe_periods,
                        };
                        (Some(hold), None)
                    }),
                (prop::collection::btree_set(1u16..=u16::MAX, 1..3), 0..=room).prop_map(
                    move |(ports, extra)| {
                        let follow = FollowArgs {
                            ports: ports.into_iter().collect(),
                            until: delay + extra,
                        };
                        (None, Some(follow))
                    }
                ),
            ]
        }

        fn prestop_args() -> impl Strategy<Value = PrestopArgs> {
            (0u32..=crate::duration::MAX_SECONDS)
                .prop_flat_map(|delay| (Just(delay), timing(delay), 0u32..=600))
                .prop_flat_map(|(delay, (hold, follow), stagger)| {
                    (base_args(delay), Just((hold, follow, stagger)))
                })
                .prop_map(|(args, (hold, follow, stagger))| PrestopArgs {
                    hold,
                    follow,
                    stagger,
                    ..args
                })
        }

        fn base_args(delay: u32) -> impl Strategy<Value = PrestopArgs> {
            (
                Just(delay),
                0u32..=crate::duration::MAX_SECONDS,
                prop::collection::vec(url(), 0..3),
                prop::collection::btree_set(1u16..=u16::MAX, 0..4),
                prop::option::of(1i32..=64),
                prop::option::of(url()),
                prop::option::of(prop::collection::vec("\\PC{0,8}|--|--max", 1..4)),
            )
                .prop_map(
                    |(delay, max, notify, ports, signal, then_http_get, exec)| PrestopArgs {
                        delay,
                        notify,
                        wait_idle: ports.into_iter().collect(),
                        max,
                        signal,
                        then_http_get,
                        then_exec: exec
                            .filter(|words| !words[0].is_empty())
                            .map(|words| words.into_iter().map(OsString::from).collect()),
                        hold: None,
                        follow: None,
                        stagger: 0,
                    },
                )
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
            #[test]
            fn parse_reads_back_what_to_args_writes(args in prestop_args()) {
                let rendered: Vec<OsString> = args.to_args().into_iter().map(OsString::from).collect();
                prop_assert_eq!(parse(&rendered), Ok(Command::Prestop(args)));
            }
        }

        #[test]
        fn install_renders_what_parse_reads() {
            let rendered: Vec<OsString> = render_install("/.drain")
                .into_iter()
                .map(OsString::from)
                .collect();
            assert_eq!(
                parse(&rendered),
                Ok(Command::Install {
                    dir: PathBuf::from("/.drain")
                })
            );
        }
    }
}
