//! The phases between notify and the signal: the adaptive hold (`--quiet`), following the
//! front proxy's listeners (`--follow`) and the stagger. docs/helper.md, "The adaptive hold".

use std::time::{Duration, Instant};

use super::{Cut, Drain, Host, IDLE_POLL, NOTIFY_TIMEOUT, ports_text, seconds_text, sleep_until};
use crate::drain_record::EndReason;
use crate::helper::args::{FollowArgs, HoldArgs, Migrate};
use crate::helper::hold::{Hold, Release, Sample, Verdict};
use crate::helper::net::http_request;
use crate::helper::proc_net::{TCP_LISTEN, read_passive_opens, read_sockets};
use crate::helper::signal::{send_signal, signal_name};
use crate::helper::sock_diag::{self, Inbound};

/// How often the hold reads the counter and the socket table. Neither misses anything between
/// reads (the kernel counts every accept, and every byte a connection open at both reads
/// received), so the period only sets how late after the quiet window (or the floor and cap,
/// which get a sample of their own) the hold may end: a quarter of a second is well under any
/// load balancer's lag, and a 1-2 KiB file and one socket dump four times a second cost little.
const HOLD_POLL: Duration = Duration::from_millis(250);
/// At most this many samples per quiet window (a long `--quiet` is sampled more slowly), so
/// the hold's memory stays small whatever Q is.
const SAMPLES_PER_WINDOW: u32 = 240;
/// At most this many samples kept for the probes' look-back (their longest period), whatever
/// the periods are: 10 minutes at 250 ms.
const SAMPLES_PER_LOOKBACK: u32 = 2_400;
/// How long after the migration the inbound connections are counted again: enough for a
/// reload (nginx starts its new workers and the old ones close their idle connections within
/// milliseconds), short enough to say it in the log while the hold goes on.
const MIGRATION_AFTER: Duration = Duration::from_secs(1);

/// A migration done: when, and how many inbound connections were open just before.
struct Migrated {
    at: Instant,
    before: Option<usize>,
}

impl Drain<'_> {
    /// The adaptive hold: from right after notify until quiet (at least `delay`), at most
    /// until the cap. When the counter cannot be read it is the fixed delay instead; when the
    /// socket table cannot, the counter alone decides.
    pub(super) fn hold(
        &mut self,
        delay: u32,
        hold: &HoldArgs,
        host: &Host,
    ) -> Result<EndReason, Cut> {
        self.log(&format!(
            "hold: at least {delay}s, until quiet for {}s, at most {}s",
            hold.quiet, hold.cap
        ));
        let quiet = Duration::from_secs(u64::from(hold.quiet));
        let floor = self.start + Duration::from_secs(u64::from(delay));
        let cap = self.start + Duration::from_secs(u64::from(hold.cap));
        let mut state = Hold::new(delay, hold.quiet, hold.cap, &hold.probe_periods);
        if hold.migrate.is_some() {
            state = state.with_migration();
        }
        let mut migrated: Option<Migrated> = None;
        let lookback = Duration::from_millis(state.lookback_ms());
        let poll = HOLD_POLL
            .max(quiet / SAMPLES_PER_WINDOW)
            .max(lookback / SAMPLES_PER_LOOKBACK);
        let mut next_report = self.start;
        let mut inbound = Some(Inbound::new(host.inbound_ports.clone()));
        loop {
            let now = Instant::now();
            let passive_opens = match read_passive_opens(&host.snmp) {
                Ok(counter) => counter,
                Err(why) => return self.fixed_hold(delay, &why),
            };
            let sample = Sample {
                passive_opens,
                reused_bytes: self.reused_bytes(&mut inbound),
            };
            let at_ms =
                u64::try_from(now.duration_since(self.start).as_millis()).unwrap_or(u64::MAX);
            let verdict = state.observe(at_ms, sample);
            self.outcome.last_arrival_ms = state.last_arrival_ms();
            self.outcome.after_floor = state.after_floor();
            let open = inbound.as_ref().map(Inbound::established);
            if let (Verdict::Hold { migrate: true, .. }, Some(how)) = (verdict, &hold.migrate) {
                migrated = self.migrate(how, host.target_pid, open);
            }
            if let Some(done) = migrated.take_if(|done| {
                matches!(verdict, Verdict::Release(_)) || now >= done.at + MIGRATION_AFTER
            }) {
                self.log_after_migration(&done, open);
            }
            match verdict {
                Verdict::Release(Release::Quiet) => {
                    self.log(&format!(
                        "hold ended after {}: quiet for {}s",
                        self.elapsed(),
                        hold.quiet
                    ));
                    return Ok(EndReason::Quiet);
                }
                Verdict::Release(Release::Cap) => {
                    self.log(&format!(
                        "hold ended after {}: cap {}s reached with traffic still arriving",
                        self.elapsed(),
                        hold.cap
                    ));
                    return Ok(EndReason::Cap);
                }
                // More than the probes' share arrived, or requests on open connections: say so,
                // at most once per quiet window.
                Verdict::Hold {
                    arrivals,
                    excused,
                    bytes,
                    ..
                } if (arrivals > excused || bytes > 0) && now >= next_report => {
                    let on_open = match inbound {
                        Some(_) => format!(" and {bytes} bytes on open connections"),
                        None => String::new(),
                    };
                    self.log(&format!(
                        "still receiving: {arrivals} new connections{on_open} in the last {}s",
                        hold.quiet
                    ));
                    next_report = now + quiet;
                }
                Verdict::Hold { .. } => {}
            }
            self.check("hold")?;
            // The floor and the cap get a sample of their own, so the hold ends on time.
            let mut next = now + poll;
            for edge in [floor, cap] {
                if edge > now && edge < next {
                    next = edge;
                }
            }
            sleep_until(next.min(self.deadline));
        }
    }

    /// Asks the front proxy (PID 1, or the URL) to end its existing connections gracefully
    /// while it keeps listening. `open`: the inbound connections at the sample just taken. A
    /// failure is one line, and the hold goes on as without `--migrate`.
    fn migrate(&mut self, how: &Migrate, pid: i32, open: Option<usize>) -> Option<Migrated> {
        let result = match how {
            Migrate::Signal(signal) => {
                let name = signal_name(*signal);
                send_signal(pid, *signal)
                    .map(|()| format!("sent {name} to PID {pid}"))
                    .map_err(|err| format!("could not send {name} to PID {pid}: {err}"))
            }
            Migrate::Post(url) => {
                let deadline = self.deadline.min(Instant::now() + NOTIFY_TIMEOUT);
                match http_request("POST", url, deadline) {
                    Ok(status) if (200..300).contains(&status) => {
                        Ok(format!("POST {url}: HTTP {status}"))
                    }
                    Ok(status) => Err(format!("POST {url}: HTTP {status}")),
                    Err(err) => Err(format!("POST {url} failed: {err}")),
                }
            }
        };
        let open_text = open.map_or("unknown".to_string(), |n| n.to_string());
        match result {
            Ok(done) => {
                self.log(&format!(
                    "migrated after {}: {done}; {open_text} inbound connection(s) open before",
                    self.elapsed()
                ));
                self.outcome.migrated_at_ms = Some(self.elapsed_ms());
                Some(Migrated {
                    at: Instant::now(),
                    before: open,
                })
            }
            Err(why) => {
                self.log(&format!(
                    "migration failed after {}: {why}; holding on as before",
                    self.elapsed()
                ));
                None
            }
        }
    }

    /// How many inbound connections are open about a second after the migration (or at the
    /// end of the hold, if that came first), beside how many were open before.
    fn log_after_migration(&mut self, done: &Migrated, open: Option<usize>) {
        let count = |n: Option<usize>| n.map_or("unknown".to_string(), |n| n.to_string());
        self.log(&format!(
            "after migration: {} inbound connection(s) open {} after ({} before)",
            count(open),
            seconds_text(done.at.elapsed()),
            count(done.before)
        ));
    }

    /// Bytes received since the previous sample on the pod's inbound connections open at both.
    /// The first failure (no netlink socket, refused by seccomp, a kernel without
    /// `tcpi_bytes_received`, a malformed answer) turns this off for the rest of the hold with
    /// one line: the counter alone decides then, as before, never a failed hook.
    fn reused_bytes(&mut self, inbound: &mut Option<Inbound>) -> u64 {
        let Some(tracker) = inbound else {
            return 0;
        };
        match sock_diag::dump().and_then(|sockets| tracker.sample(&sockets)) {
            Ok(bytes) => bytes,
            Err(why) => {
                *inbound = None;
                self.log(&format!(
                    "hold: cannot see requests on open connections ({why}); counting new connections only"
                ));
                0
            }
        }
    }

    /// The counter cannot be read (`why`): the hold is the fixed delay, never a failed hook.
    fn fixed_hold(&mut self, delay: u32, why: &str) -> Result<EndReason, Cut> {
        let end = self.start + Duration::from_secs(u64::from(delay));
        if Instant::now() < end {
            self.log(&format!(
                "hold: {why}; holding for the fixed delay {delay}s"
            ));
            sleep_until(end.min(self.deadline));
        }
        self.check("hold")?;
        self.log(&format!(
            "hold ended after {}: fixed ({why})",
            self.elapsed()
        ));
        Ok(EndReason::Fixed)
    }

    /// After the delay, waits until nothing listens on `follow.ports` (the front proxy began
    /// its graceful stop), at most until `follow.until` from the start. Tables that cannot be
    /// read leave the proxy's state unknown, and so do ports nothing listened on when the hook
    /// started (`listened_at_start` false: the declared containerPorts are not the ones the
    /// proxy serves on): then the follow lasts until the bound, since stopping the app while the
    /// proxy may still forward to it costs requests and stopping it later only costs time (the
    /// grace period covers the bound).
    pub(super) fn follow(
        &mut self,
        follow: &FollowArgs,
        listened_at_start: Option<bool>,
    ) -> Result<(), Cut> {
        let ports = ports_text(&follow.ports);
        self.log(&format!(
            "follow: waiting until nothing listens on port(s) {ports} (at most {}s)",
            follow.until
        ));
        let bound = self.start + Duration::from_secs(u64::from(follow.until));
        let mut first = true;
        let mut unknown = false;
        let foreign = listened_at_start == Some(false);
        if foreign {
            self.log(&format!(
                "follow: nothing listened on port(s) {ports} when the hook started, so they are not the proxy's listeners; waiting until {}s rather than stopping before the proxy",
                follow.until
            ));
        }
        loop {
            match read_sockets().filter(|_| !foreign) {
                Some(sockets) => {
                    let listening = sockets
                        .iter()
                        .any(|s| s.state == TCP_LISTEN && follow.ports.contains(&s.local_port));
                    if !listening {
                        let note = match first {
                            true => " (already closed when the follow began)",
                            false => "",
                        };
                        self.log(&format!(
                            "follow ended after {}: listeners closed{note}",
                            self.elapsed()
                        ));
                        return Ok(());
                    }
                }
                None if !unknown && !foreign => {
                    unknown = true;
                    self.log(&format!(
                        "follow: cannot read /proc/net/tcp or /proc/net/tcp6; waiting until {}s rather than stopping before the proxy",
                        follow.until
                    ));
                }
                None => {}
            }
            first = false;
            if Instant::now() >= bound {
                let note = match (unknown, foreign) {
                    (true, _) => " (listeners unknown: the TCP tables could not be read)",
                    (_, true) => " (nothing listened on the ports at the start)",
                    _ => "",
                };
                self.log(&format!(
                    "follow ended after {}: bound {}s reached{note}",
                    self.elapsed(),
                    follow.until
                ));
                return Ok(());
            }
            self.check("follow")?;
            sleep_until((Instant::now() + IDLE_POLL).min(bound).min(self.deadline));
        }
    }

    /// Sleeps `stagger` seconds: the front proxy's drain gets that long before the next phase.
    pub(super) fn stagger(&mut self, stagger: u32) -> Result<(), Cut> {
        if stagger == 0 {
            return Ok(());
        }
        self.log(&format!("stagger: {stagger}s"));
        let end = Instant::now() + Duration::from_secs(u64::from(stagger));
        sleep_until(end.min(self.deadline));
        self.check("stagger")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_quiet_windows_are_sampled_more_slowly() {
        let poll = |quiet: u64| HOLD_POLL.max(Duration::from_secs(quiet) / SAMPLES_PER_WINDOW);
        assert_eq!(poll(3), HOLD_POLL);
        assert_eq!(poll(60), HOLD_POLL);
        assert_eq!(poll(600), Duration::from_millis(2_500));
    }
}
