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
    let mut then_http_get = None;
    let mut then_exec = None;

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
            "--delay" | "--notify" | "--wait-idle" | "--max" | "--signal" | "--then-http-get"
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
                wait_idle = Some(ports(value)?);
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
    Ok(Command::Prestop(PrestopArgs {
        delay,
        notify,
        wait_idle: wait_idle.unwrap_or_default(),
        max: max.unwrap_or(delay.saturating_add(DEFAULT_MAX_EXTRA_SECONDS)),
        signal,
        then_http_get,
        then_exec,
    }))
}

/// The command line that [`parse`] reads back as `Command::Install { dir, then }`. `None`:
/// the init container's `install DIR`, as every earlier version wrote it (an exit).
#[cfg(feature = "webhook")]
pub fn render_install(dir: &str, then: Option<AfterInstall>) -> Vec<String> {
    let mut words = vec!["install".to_owned(), dir.to_owned()];
    if let Some(then) = then {
        words.extend(["--then".to_owned(), then.as_str().to_owned()]);
    }
    words
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
fn ports(value: &str) -> Result<Vec<u16>, UsageError> {
    let mut ports: Vec<u16> = Vec::new();
    for part in value.split(',') {
        let part = part.trim();
        let port = parse_port(part).ok_or_else(|| {
            usage(format!(
                "--wait-idle \"{value}\": \"{part}\" is not a port (1-65535)"
            ))
        })?;
        if let Err(at) = ports.binary_search(&port) {
            ports.insert(at, port);
        }
    }
    Ok(ports)
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
            }
        );
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
                dir: PathBuf::from("/.drain"),
                then: AfterInstall::Exit,
            })
        );
        for (word, then) in [("exit", AfterInstall::Exit), ("sleep", AfterInstall::Sleep)] {
            assert_eq!(
                parse_strs(&["install", "/.drain", "--then", word]),
                Ok(Command::Install {
                    dir: PathBuf::from("/.drain"),
                    then,
                })
            );
        }
        assert!(error(&["install"]).contains("missing DIR"));
        assert!(error(&["install", "/a", "/b"]).contains("\"/b\""));
        assert!(error(&["install", "--force"]).contains("--force"));
        assert!(error(&["install", "--then", "sleep", "/a"]).contains("DIR comes first"));
        assert!(error(&["install", "/a", "--then"]).contains("exit or sleep"));
        assert!(error(&["install", "/a", "--then", "nap"]).contains("\"nap\""));
        assert!(error(&["install", "/a", "--then", "exit", "x"]).contains("\"--then\""));
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

        fn prestop_args() -> impl Strategy<Value = PrestopArgs> {
            (
                0u32..=crate::duration::MAX_SECONDS,
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
            for (then, parsed) in [
                (None, AfterInstall::Exit),
                (Some(AfterInstall::Exit), AfterInstall::Exit),
                (Some(AfterInstall::Sleep), AfterInstall::Sleep),
            ] {
                let rendered: Vec<OsString> = render_install("/.drain", then)
                    .into_iter()
                    .map(OsString::from)
                    .collect();
                assert_eq!(
                    parse(&rendered),
                    Ok(Command::Install {
                        dir: PathBuf::from("/.drain"),
                        then: parsed,
                    })
                );
            }
            // The init container's command is the one earlier versions wrote.
            assert_eq!(render_install("/.drain", None), ["install", "/.drain"]);
        }
    }
}
