//! `drain-helper prestop`: the phases of a drain, each bounded by `--max`.
//!
//! notify -> delay, adaptive hold or follow -> stagger -> wait-idle -> then-http-get ->
//! then-exec; with `--signal`, the signal comes before wait-idle (the proxy's clients only
//! leave once it drains). The delay counts from the start of the hook, so slow notify targets do not
//! lengthen the drain; the hold, the follow and the stagger live in `hold_phase`.
//!
//! The signal phase ends once the signalled process has closed its listeners and their
//! connections are done, not when it exits: when a container's PID 1 exits, the runtime kills
//! the hook with it (exit 137, a `FailedPreStopHook` event). The helper pins one connection of
//! its own open on each listener so that the process cannot finish before the helper has
//! exited (docs/helper.md, "Why the hook ends before the proxy").

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use super::args::{PrestopArgs, Wait};
use super::log::Log;
use super::net::http_request;
use super::proc_net::{established_on, listening_on};
use super::signal::signal_name;
use super::spawn::spawn;
use crate::drain_record::EndReason;
use record::Outcome;
use signal_phase::{Stopped, local_ports};

mod hold_phase;
pub mod record;
mod signal_phase;

/// Every phase finished (and no `--then-exec` was given).
pub const EXIT_OK: i32 = 0;
/// A phase failed in a way the kubelet should hear about (`--then-http-get` got no 2xx/3xx
/// answer, `--then-exec` could not be started).
pub const EXIT_FAILURE: i32 = 1;
/// `--max` ran out before every phase finished (the same code as `timeout(1)`).
pub const EXIT_MAX_REACHED: i32 = 124;

/// How long one `--notify` call may take at most.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(2);
/// How often `--wait-idle` reads the TCP tables.
pub const IDLE_POLL: Duration = Duration::from_millis(200);
/// How often the signalled process and the `--then-exec` child are checked.
const EXIT_POLL: Duration = Duration::from_millis(50);
/// How often `--wait-idle` repeats how many connections are still open.
const IDLE_REPORT_EVERY: Duration = Duration::from_secs(5);

/// What the hook acts on and reads, which tests replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The process `--signal` addresses: PID 1 of the container.
    pub target_pid: i32,
    /// The counters the adaptive hold reads: [`SNMP`](super::proc_net::SNMP).
    pub snmp: PathBuf,
    /// Test only: the hold counts bytes on connections to these ports, loopback peers included.
    pub inbound_ports: Option<Vec<u16>>,
}

impl Default for Host {
    fn default() -> Host {
        Host {
            target_pid: 1,
            snmp: PathBuf::from(super::proc_net::SNMP),
            inbound_ports: None,
        }
    }
}

/// Runs the prestop hook and returns the process exit code.
pub fn run(args: &PrestopArgs, host: &Host, log: &mut Log) -> i32 {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(u64::from(args.max));
    let mut drain = Drain {
        start,
        deadline,
        log,
        pins: Vec::new(),
        outcome: Outcome::default(),
    };
    let code = match drain.phases(args, host) {
        Ok(code) => {
            drain.log(&format!("done after {} (exit {code})", drain.elapsed()));
            code
        }
        Err(Cut(phase)) => {
            drain.log(&format!(
                "--max {}s reached during {phase}; stopping after {} (exit {EXIT_MAX_REACHED})",
                args.max,
                drain.elapsed()
            ));
            EXIT_MAX_REACHED
        }
    };
    if let Some(target) = &args.record {
        let record = drain
            .outcome
            .record(target.role, args.window.floor, code, drain.elapsed_ms());
        // Once, whatever happens: the exit status stays the drain's.
        match record::append(Path::new(target.path.as_ref()), &record.to_line()) {
            Ok(()) => drain.log(&format!("drain record appended to {}", target.path)),
            Err(why) => drain.log(&format!(
                "drain record not written to {}: {why} (the hook goes on)",
                target.path
            )),
        }
    }
    // The pins are closed by the kernel when the process exits, after its exit code is fixed:
    // the proxy can only finish (and its exit take the hook down) once the hook has ended.
    std::mem::forget(drain.pins);
    code
}

/// `--max` ran out during the named phase.
struct Cut(&'static str);

struct Drain<'a> {
    start: Instant,
    deadline: Instant,
    log: &'a mut Log,
    /// The helper's own connections to the signalled process's listeners.
    pins: Vec<TcpStream>,
    /// What the drain record says (`--record`).
    outcome: Outcome,
}

impl Drain<'_> {
    fn log(&mut self, message: &str) {
        self.log.line(message);
    }

    fn elapsed(&self) -> String {
        seconds_text(self.start.elapsed())
    }

    /// Milliseconds since the hook started, as the drain record counts.
    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The delay, the hold or the follow ended now, for `why`.
    fn ended(&mut self, why: EndReason) {
        self.outcome.ended = Some((self.elapsed_ms(), why));
    }

    fn check(&self, phase: &'static str) -> Result<(), Cut> {
        match Instant::now() >= self.deadline {
            true => Err(Cut(phase)),
            false => Ok(()),
        }
    }

    fn phases(&mut self, args: &PrestopArgs, host: &Host) -> Result<i32, Cut> {
        self.log(&format!(
            "start (delay {}s, max {}s, notify {}, wait-idle {}, signal {}, then {})",
            args.window.floor,
            args.max,
            args.notify.len(),
            match args.wait_idle.is_empty() {
                true => "off".to_string(),
                false => ports_text(&args.wait_idle),
            },
            args.signal.map_or("off".to_string(), signal_name),
            match (&args.then_http_get, &args.then_exec) {
                (None, None) => "nothing",
                (Some(_), None) => "http-get",
                (None, Some(_)) => "exec",
                (Some(_), Some(_)) => "http-get, exec",
            },
        ));

        for url in &args.notify {
            self.check("notify")?;
            let call_deadline = self.deadline.min(Instant::now() + NOTIFY_TIMEOUT);
            match http_request("POST", url, call_deadline) {
                Ok(status) => self.log(&format!("notify POST {url}: HTTP {status}")),
                Err(err) => self.log(&format!("notify POST {url} failed: {err} (going on)")),
            }
        }

        // The hold takes its first sample now, right after notify: its window is full at D, and
        // the helper's own notify connections are in the baseline, not counted as traffic.
        let window = &args.window;
        match &window.wait {
            Wait::Hold(hold) => {
                let why = self.hold(window.floor, hold, host)?;
                self.ended(why);
            }
            Wait::Follow(follow) => {
                // Whether the ports listen at the start tells a proxy that has already closed
                // them (follow ends) from ports that are not the proxy's (wait to the bound).
                let listened_at_start = listening_on(&follow.ports);
                self.delay(window.floor)?;
                self.follow(follow, listened_at_start)?;
                self.ended(EndReason::Follow);
            }
            Wait::Delay => {
                self.delay(window.floor)?;
                self.ended(EndReason::Fixed);
            }
        }
        self.stagger(window.stagger)?;
        // A proxy's clients (a load balancer's kept-alive connections) stay open until the
        // proxy closes them, which it does only after its graceful signal: waiting for idle
        // ports first would reach --max without ever sending it. So a container with a signal
        // waits for its ports after it; one without waits before its SIGTERM (the hook's end).
        match args.signal {
            Some(signal) => {
                let stopped = self.signal(host.target_pid, signal, args.fast_signal)?;
                if !args.wait_idle.is_empty() && stopped == Stopped::Gracefully {
                    self.wait_idle(&args.wait_idle)?;
                }
            }
            None if !args.wait_idle.is_empty() => self.wait_idle(&args.wait_idle)?,
            None => {}
        }

        let mut code = EXIT_OK;
        if let Some(url) = &args.then_http_get {
            self.check("then-http-get")?;
            match http_request("GET", url, self.deadline) {
                Ok(status) if (200..400).contains(&status) => {
                    self.log(&format!("then-http-get GET {url}: HTTP {status}"));
                }
                Ok(status) => {
                    self.log(&format!("then-http-get GET {url}: HTTP {status} (failure)"));
                    code = EXIT_FAILURE;
                }
                Err(err) => {
                    self.check("then-http-get")?;
                    self.log(&format!("then-http-get GET {url} failed: {err}"));
                    code = EXIT_FAILURE;
                }
            }
        }
        if let Some(command) = &args.then_exec {
            let exec_code = self.exec(command)?;
            if exec_code != EXIT_OK {
                code = exec_code;
            }
        }
        Ok(code)
    }

    fn delay(&mut self, delay: u32) -> Result<(), Cut> {
        let end = self.start + Duration::from_secs(u64::from(delay));
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            self.log(&format!("delay {delay}s already over"));
            return self.check("delay");
        }
        self.log(&format!("sleeping {} (delay {delay}s)", seconds_text(left)));
        sleep_until(end.min(self.deadline));
        self.check("delay")
    }

    fn wait_idle(&mut self, ports: &[u16]) -> Result<(), Cut> {
        let ports_text = ports_text(ports);
        let phase_start = Instant::now();
        let mut last_report: Option<(Instant, usize)> = None;
        // The helper's own pins on the signalled process's listeners are not the clients.
        let pin_ports = local_ports(&self.pins);
        loop {
            let Some(open) = established_on(ports, &pin_ports) else {
                self.log("wait-idle: cannot read /proc/net/tcp or /proc/net/tcp6; not waiting");
                return Ok(());
            };
            if open == 0 {
                self.log(&format!(
                    "wait-idle: no established connections on port(s) {ports_text} (waited {})",
                    seconds_text(phase_start.elapsed())
                ));
                return Ok(());
            }
            let report = match last_report {
                None => true,
                Some((at, count)) => count != open && at.elapsed() >= IDLE_REPORT_EVERY,
            };
            if report {
                self.log(&format!(
                    "wait-idle: {open} established connection(s) on port(s) {ports_text}; waiting"
                ));
                last_report = Some((Instant::now(), open));
            }
            self.check("wait-idle")?;
            sleep_until((Instant::now() + IDLE_POLL).min(self.deadline));
        }
    }

    fn exec(&mut self, command: &[std::ffi::OsString]) -> Result<i32, Cut> {
        self.check("then-exec")?;
        let shown = command
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        if command.is_empty() {
            return Ok(EXIT_OK);
        }
        let child = match spawn(command) {
            Ok(child) => child,
            Err(err) => {
                self.log(&format!("then-exec \"{shown}\" could not start: {err}"));
                return Ok(match err.kind() {
                    std::io::ErrorKind::NotFound => 127,
                    std::io::ErrorKind::PermissionDenied => 126,
                    _ => EXIT_FAILURE,
                });
            }
        };
        self.log(&format!(
            "then-exec \"{shown}\" started (PID {})",
            child.pid
        ));
        loop {
            match child.try_wait() {
                Ok(Some(code)) => {
                    self.log(&format!("then-exec \"{shown}\" exited with {code}"));
                    return Ok(code);
                }
                Ok(None) => {}
                Err(err) => {
                    self.log(&format!("then-exec \"{shown}\": cannot wait: {err}"));
                    return Ok(EXIT_FAILURE);
                }
            }
            if self.check("then-exec").is_err() {
                child.kill_and_wait();
                return Err(Cut("then-exec (the command was killed)"));
            }
            sleep_until((Instant::now() + EXIT_POLL).min(self.deadline));
        }
    }
}

/// `1.2s`: tenths of a second, rounded down (integer formatting keeps float code out of the
/// static binary).
fn seconds_text(duration: Duration) -> String {
    format!("{}.{}s", duration.as_secs(), duration.subsec_millis() / 100)
}

fn ports_text(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn sleep_until(until: Instant) {
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        thread::sleep(left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_shown_in_tenths() {
        assert_eq!(seconds_text(Duration::ZERO), "0.0s");
        assert_eq!(seconds_text(Duration::from_millis(1_299)), "1.2s");
        assert_eq!(seconds_text(Duration::from_secs(90)), "90.0s");
    }

    #[test]
    fn ports_are_listed_with_commas() {
        assert_eq!(ports_text(&[80, 8080]), "80,8080");
    }
}
