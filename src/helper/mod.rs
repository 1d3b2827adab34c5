//! The drain-helper binary: copied into pods by an installer container (`install`) and run as the
//! containers' preStop exec hook (`prestop`). std + libc only, so it builds without the
//! `webhook` feature and links statically. See docs/helper.md.

pub mod args;
pub mod hold;
pub mod install;
pub mod log;
pub mod net;
pub mod prestop;
pub mod proc_net;
pub mod signal;
pub mod sock_diag;
pub mod spawn;

use std::ffi::OsString;
use std::io::Write;

use args::{AfterInstall, Command, UsageError};
use log::Log;

/// Exit code for a bad command line.
pub const EXIT_USAGE: i32 = 2;

/// Test only: signal this PID instead of 1, and log to the helper's own stderr.
pub const ENV_TARGET_PID: &str = "DRAIN_HELPER_TARGET_PID";
/// Test only: log to the helper's own stderr instead of PID 1's.
pub const ENV_LOG_TO_STDERR: &str = "DRAIN_HELPER_LOG_TO_STDERR";
/// Test only: the adaptive hold reads this file instead of /proc/net/snmp.
pub const ENV_SNMP_PATH: &str = "DRAIN_HELPER_SNMP_PATH";
/// Test only: the adaptive hold counts bytes on connections to these local ports (comma list),
/// loopback peers included, instead of those on the pod's listening ports from outside the pod:
/// a test's client on the same machine is a loopback peer, and only its port is watched.
pub const ENV_INBOUND_PORTS: &str = "DRAIN_HELPER_INBOUND_PORTS";

const USAGE: &str = "\
usage: drain-helper install DIR [--then exit|sleep]
       drain-helper prestop --delay D [--notify URL]... [--quiet Q --hold-max M [--probe-every P]
                            [--migrate SIG|URL]]
                            [--follow PORTS --follow-until T] [--stagger S] [--wait-idle PORTS]
                            [--max T] [--signal SIG [--fast-signal SIG]] [--then-http-get URL]
                            [--record PATH --role proxy|app] [--then-exec -- CMD ARGS...]
       drain-helper --help | --version";

const HELP: &str = "
Copies itself into pods and runs as their preStop hook, so that shutdown loses no requests.

install DIR          copy this binary to DIR/drain-helper (atomically, mode 0755)
  --then exit        then exit 0 (the default)
  --then sleep       then sleep until SIGTERM or SIGINT and exit 0 (a pod's first container)
prestop              run the drain phases, in this order:
  --notify URL       POST to http://IP:PORT/PATH at the start (repeatable; 2s timeout each)
  --delay D          sleep until D after the start (\"15\", \"10s\", \"1m30s\"; required)
  --quiet Q --hold-max M
                     then hold while new connections (Tcp PassiveOpens in /proc/net/snmp)
                     or requests on open ones (bytes received, from the socket table) still
                     arrive in the pod: released once none arrived for Q, at M from the
                     start at the latest; fixed at D if the count is unreadable
  --probe-every P    comma list of the periods of the probes that connect to the pod
                     (httpGet, tcpSocket, grpc): one connection per probe and period does
                     not hold the pod
  --migrate SIG|URL  once D is reached and the hold goes on, send SIG to PID 1 (nginx:
                     SIGHUP, a reload) or POST to URL, so that the proxy ends its existing
                     connections while it keeps listening; a failure is logged only
  --follow PORTS --follow-until T
                     instead, hold until nothing listens on PORTS (the front proxy began
                     its graceful stop), at T from the start at the latest
  --stagger S        then sleep S more before the next phase
  --wait-idle PORTS  then wait until no ESTABLISHED connection has one of these local ports
                     (comma list; reads /proc/net/tcp and /proc/net/tcp6 every 200ms)
  --signal SIG       then send SIG (SIGQUIT, TERM, 3, ...) to PID 1 and wait until its
                     listeners are closed and their connections done (or it exits)
  --fast-signal SIG  when --max runs out while it still drains (long streams), send SIG
                     (its fast stop, e.g. SIGTERM for nginx) and end without the 124
  --then-http-get URL  then GET URL (fails unless the answer is 2xx or 3xx)
  --then-exec -- CMD ARGS...  then run CMD and exit with its status (must be last)
  --record PATH --role proxy|app
                     at the end, append one JSON line saying how the drain went to PATH
                     (the termination message file); never fails the hook
  --max T            bound of the whole hook (default: the latest end of the delay, hold or
                     follow, plus the stagger, plus 30s); when reached, the
                     running phase is cut and the exit code is 124

URLs take IP literals only (http://127.0.0.1:8080/x, http://[::1]:8080/x): no DNS.
Logs go to PID 1's stderr (/proc/1/fd/2), which `kubectl logs` shows, else to stderr.
Exit codes: 0 done, 1 failure, 2 bad arguments, 124 --max reached, else --then-exec's.
";

/// Runs the helper with the full argument list (program name first) and returns the exit
/// code. Never panics on any input.
pub fn main_with_args(args: impl IntoIterator<Item = OsString>) -> i32 {
    signal::ignore_sigpipe();
    let mut args = args.into_iter();
    let argv0 = args.next();
    let rest: Vec<OsString> = args.collect();
    match args::parse(&rest) {
        Ok(Command::Help) => {
            let _ = writeln!(std::io::stdout(), "{USAGE}\n{HELP}");
            0
        }
        Ok(Command::Version) => {
            let _ = writeln!(
                std::io::stdout(),
                "drain-helper {}",
                env!("CARGO_PKG_VERSION")
            );
            0
        }
        Ok(Command::Install { dir, then }) => run_install(argv0.as_deref(), &dir, then),
        Ok(Command::Prestop(prestop_args)) => match test_overrides() {
            Ok((host, to_stderr)) => {
                let mut log = match to_stderr {
                    true => Log::stderr("prestop"),
                    false => Log::to_process_stderr(host.target_pid, "prestop"),
                };
                prestop::run(&prestop_args, &host, &mut log)
            }
            Err(err) => usage_error(&err),
        },
        Err(err) => usage_error(&err),
    }
}

/// `install DIR [--then exit|sleep]`. A failed install exits 1 in both modes, so the pod shows
/// it (the init container never completes; a first container restarts and keeps the pod
/// unready) instead of serving with hooks that cannot run.
fn run_install(argv0: Option<&std::ffi::OsStr>, dir: &std::path::Path, then: AfterInstall) -> i32 {
    let mut log = Log::stderr("install");
    // Before the copy: a SIGTERM that arrives while it runs is kept for the sleep.
    let blocked = match then {
        AfterInstall::Sleep => match signal::block_termination() {
            Ok(set) => Some(set),
            Err(err) => {
                log.line(&format!("cannot block SIGTERM and SIGINT: {err}"));
                return prestop::EXIT_FAILURE;
            }
        },
        AfterInstall::Exit => None,
    };
    let source = install::own_executable(argv0);
    match install::install_from(&source, dir) {
        Ok((path, size)) => log.line(&format!("installed {} ({size} bytes)", path.display())),
        Err(err) => {
            log.line(&format!(
                "cannot install {} into {}: {err}",
                source.display(),
                dir.display()
            ));
            return prestop::EXIT_FAILURE;
        }
    }
    let Some(blocked) = blocked else { return 0 };
    log.line("sleeping until SIGTERM (the binary stays for the other containers' hooks)");
    match signal::wait_for_termination(&blocked) {
        Ok(number) => {
            log.line(&format!("{}: exiting", signal::signal_name(number)));
            0
        }
        Err(err) => {
            log.line(&format!("cannot wait for SIGTERM: {err}"));
            prestop::EXIT_FAILURE
        }
    }
}

/// Reads the test-only environment overrides: the PID to signal, the counters file, the
/// watched inbound ports, and whether to log to the own stderr.
fn test_overrides() -> Result<(prestop::Host, bool), UsageError> {
    let mut host = prestop::Host::default();
    let mut to_stderr = matches!(
        std::env::var_os(ENV_LOG_TO_STDERR),
        Some(value) if !value.is_empty() && value != "0"
    );
    if let Some(value) = std::env::var_os(ENV_TARGET_PID) {
        host.target_pid = match value.to_str().map(str::parse::<i32>) {
            Some(Ok(pid)) if pid > 0 => pid,
            _ => {
                return Err(UsageError(format!(
                    "{ENV_TARGET_PID}=\"{}\" is not a positive PID",
                    value.to_string_lossy()
                )));
            }
        };
        to_stderr = true;
    }
    if let Some(path) = std::env::var_os(ENV_SNMP_PATH).filter(|p| !p.is_empty()) {
        host.snmp = path.into();
    }
    if let Some(value) = std::env::var_os(ENV_INBOUND_PORTS) {
        host.inbound_ports = Some(args::ports(ENV_INBOUND_PORTS, &value.to_string_lossy())?);
    }
    Ok((host, to_stderr))
}

fn usage_error(err: &UsageError) -> i32 {
    let _ = writeln!(std::io::stderr(), "drain-helper: {err}\n{USAGE}");
    EXIT_USAGE
}
