//! The two servers under test: started, waited for, measured, stopped.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::out_dir;

/// A server process under test.
pub(super) struct Server {
    pub(super) label: &'static str,
    pub(super) child: Child,
    tls: SocketAddr,
    admin: SocketAddr,
    pub(super) startup: Duration,
}

impl Server {
    pub(super) fn start(
        label: &'static str,
        mut command: Command,
        tls: SocketAddr,
        admin: SocketAddr,
    ) -> Self {
        let log = std::fs::File::create(out_dir().join(format!("{label}.log"))).expect("log file");
        let started = Instant::now();
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {label}: {err}"));
        let mut server = Self {
            label,
            child,
            tls,
            admin,
            startup: Duration::ZERO,
        };
        server.startup = server.wait_ready(started);
        server
    }

    /// Polls `/readyz` every 200 µs; the time from spawn to the first 200.
    fn wait_ready(&mut self, started: Instant) -> Duration {
        let deadline = started + Duration::from_secs(20);
        while Instant::now() < deadline {
            if readyz(self.admin) {
                return started.elapsed();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited before it was ready: {status}", self.label);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        panic!("{} not ready within 20 s", self.label);
    }

    /// Peak resident set size so far, in KiB (`VmHWM`).
    pub(super) fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/PID/status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }

    pub(super) fn url(&self) -> String {
        format!("https://{}/mutate", self.tls)
    }

    pub(super) fn stop(mut self) {
        // SIGTERM: the graceful path (both servers are started with no shutdown delay).
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain HTTP/1.1 `GET /readyz`; true on 200.
fn readyz(admin: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&admin, Duration::from_millis(100)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// A free loopback port (bound, read, released; the server binds it right after).
pub(super) fn free_port() -> SocketAddr {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}
