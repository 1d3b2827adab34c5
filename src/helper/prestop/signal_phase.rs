//! The signal phase: the graceful signal, then the wait until the process has closed its
//! listeners and their connections are done, pinning a connection of its own on each listener
//! so that the hook ends before the process does; its fast stop at `--max`.

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::{Cut, Drain, EXIT_POLL, ports_text, seconds_text, sleep_until};
use crate::helper::proc_net::{
    TCP_LISTEN, TcpEntry, count_established, read_sockets, socket_inodes,
};
use crate::helper::signal::{has_exited, send_signal, signal_name};

/// How often the drain is checked when no pin could be opened: the proxy may exit a few
/// milliseconds after its last connection, and the hook dies with it.
const FAST_POLL: Duration = Duration::from_millis(5);
/// What a pin connection sends: the start of a request whose headers never end, so the proxy
/// counts it as in flight (and does not close it as idle) until the helper exits. The path
/// names the helper in the proxy's logs.
const PIN_REQUEST: &[u8] = b"GET /drain-helper-pin HTTP/1.1\r\n";
/// How long opening the pins, and then their acceptance by the process, may take at most
/// (on loopback both are immediate).
const PIN_TIMEOUT: Duration = Duration::from_secs(1);

/// How the signal phase ended: the process drained (or the signal could not be sent, and the
/// drain goes on), or `--max` ran out and it got its fast stop, after which the hook ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stopped {
    Gracefully,
    Fast,
}

impl Drain<'_> {
    /// Sends the signal, then waits until the process has closed its listeners and no
    /// connection on them is left (or, when it has no listeners the helper can see, until it
    /// exits), pinning a connection on each listener meanwhile.
    /// Sends `signal` and waits for the drain; when `--max` runs out first and a `fast`
    /// signal is given, sends that (open streams end now rather than at SIGKILL) and ends the
    /// phase without a cut.
    pub(super) fn signal(
        &mut self,
        pid: i32,
        signal: i32,
        fast: Option<i32>,
    ) -> Result<Stopped, Cut> {
        self.check("signal")?;
        let name = signal_name(signal);
        let watched = self.pin_listeners(pid);
        if let Err(err) = send_signal(pid, signal) {
            self.log(&format!(
                "could not send {name} to PID {pid}: {err} (going on)"
            ));
            return Ok(Stopped::Gracefully);
        }
        self.outcome.signal_at_ms = Some(self.elapsed_ms());
        let pin_ports = local_ports(&self.pins);
        let poll = match pin_ports.is_empty() {
            true => FAST_POLL,
            false => EXIT_POLL,
        };
        let until = match watched.is_empty() {
            true => "it exits",
            false => "its listeners close and their connections are done",
        };
        self.log(&format!("sent {name} to PID {pid}; waiting until {until}"));
        let sent = Instant::now();
        let mut closed_seen = 0;
        let mut open_left = None;
        loop {
            if has_exited(pid) {
                self.log(&format!(
                    "PID {pid} exited {} after {name}",
                    seconds_text(sent.elapsed())
                ));
                return Ok(Stopped::Gracefully);
            }
            let sockets = read_sockets().unwrap_or_default();
            let closed: Vec<u16> = watched
                .iter()
                .copied()
                .filter(|&port| {
                    !sockets
                        .iter()
                        .any(|s| s.state == TCP_LISTEN && s.local_port == port)
                })
                .collect();
            if !closed.is_empty() {
                let open = count_established(&sockets, &closed, &pin_ports);
                open_left = Some(open);
                if closed.len() != closed_seen {
                    closed_seen = closed.len();
                    self.log(&format!(
                        "PID {pid} closed port(s) {} {} after {name}; {open} connection(s) left",
                        ports_text(&closed),
                        seconds_text(sent.elapsed())
                    ));
                }
                if open == 0 {
                    self.log(&format!(
                        "no connections left on port(s) {} after {}: PID {pid} has drained",
                        ports_text(&closed),
                        seconds_text(sent.elapsed())
                    ));
                    return Ok(Stopped::Gracefully);
                }
            }
            if let (Some(fast), true) = (fast, Instant::now() >= self.deadline) {
                self.fast_stop(pid, fast, open_left);
                return Ok(Stopped::Fast);
            }
            self.check("signal (waiting for the process to drain)")?;
            sleep_until((Instant::now() + poll).min(self.deadline));
        }
    }

    /// `--max` ran out while `pid` still drains: its fast stop ends what is left (long streams)
    /// before the kubelet's SIGKILL would, and the hook ends on its own.
    fn fast_stop(&mut self, pid: i32, fast: i32, open: Option<usize>) {
        let name = signal_name(fast);
        let open = open.map_or("its listeners still open".to_string(), |n| {
            format!("{n} connection(s) left")
        });
        // Logged first: once the process stops, the runtime may end the hook at any moment.
        self.log(&format!(
            "--max reached after {} while PID {pid} still drains ({open}): sending {name} (fast stop) so that it ends before SIGKILL",
            self.elapsed()
        ));
        if let Err(err) = send_signal(pid, fast) {
            self.log(&format!("could not send {name} to PID {pid}: {err}"));
        }
    }

    /// The ports `pid` listens on (its own sockets, found through `/proc/PID/fd`), each with a
    /// pin opened to it. Empty when they cannot be found: then the phase waits for the exit.
    fn pin_listeners(&mut self, pid: i32) -> Vec<u16> {
        let mut ports = Vec::new();
        let (Some(inodes), Some(sockets)) = (socket_inodes(pid), read_sockets()) else {
            self.log(&format!(
                "cannot read /proc/{pid}/fd or /proc/net/tcp: no listeners to watch"
            ));
            return ports;
        };
        for socket in &sockets {
            if socket.state != TCP_LISTEN
                || !inodes.contains(&socket.inode)
                || ports.contains(&socket.local_port)
            {
                continue;
            }
            ports.push(socket.local_port);
            match open_pin(socket, self.deadline) {
                Ok(pin) => self.pins.push(pin),
                Err(err) => self.log(&format!("no pin on port {}: {err}", socket.local_port)),
            }
        }
        // A connection still in the listen queue would be reset when the listener closes:
        // signal only once the process has accepted the pins (an accepted socket has an inode).
        let pin_ports = local_ports(&self.pins);
        let until = Instant::now() + PIN_TIMEOUT;
        while !pin_ports.is_empty() && Instant::now() < until.min(self.deadline) {
            let accepted = read_sockets()
                .unwrap_or_default()
                .iter()
                .filter(|s| {
                    s.inode != 0
                        && ports.contains(&s.local_port)
                        && pin_ports.contains(&s.remote_port)
                })
                .count();
            if accepted >= pin_ports.len() {
                break;
            }
            sleep_until(Instant::now() + FAST_POLL);
        }
        match ports.is_empty() {
            true => self.log(&format!("PID {pid} has no listening TCP sockets")),
            false => self.log(&format!(
                "PID {pid} listens on port(s) {}; pinning {} connection(s)",
                ports_text(&ports),
                self.pins.len()
            )),
        }
        ports
    }
}

pub(super) fn local_ports(streams: &[TcpStream]) -> Vec<u16> {
    streams
        .iter()
        .filter_map(|stream| stream.local_addr().ok())
        .map(|addr| addr.port())
        .collect()
}

/// A connection to the listener over loopback (a wildcard or loopback bind accepts it) with
/// the start of a request sent on it.
fn open_pin(listener: &TcpEntry, deadline: Instant) -> std::io::Result<TcpStream> {
    let ip = match listener.v6 {
        true => Ipv6Addr::LOCALHOST.into(),
        false => Ipv4Addr::LOCALHOST.into(),
    };
    let timeout = deadline
        .saturating_duration_since(Instant::now())
        .clamp(Duration::from_millis(1), PIN_TIMEOUT);
    let mut stream =
        TcpStream::connect_timeout(&SocketAddr::new(ip, listener.local_port), timeout)?;
    stream.write_all(PIN_REQUEST)?;
    Ok(stream)
}
