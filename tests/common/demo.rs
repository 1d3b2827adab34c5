//! The real drain-e2e binary as the e2e tests drive it: a running process whose log lines are
//! waited for (never a fixed time), and a demo "pod" (an app with a proxy in front of it) on
//! loopback. Shared by tests/e2e_clients.rs and tests/e2e_reload.rs.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_drain-e2e");
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct Running {
    child: Child,
    log: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    pub fn start(args: &[&str], env: &[(&str, &str)], ready: &str) -> Running {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("drain-e2e runs");
        let stderr = child.stderr.take().unwrap();
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut running = Running {
            child,
            log,
            seen: Vec::new(),
        };
        running.wait_log(ready);
        running
    }

    /// Waits for a line containing every needle; returns it.
    pub fn wait_log(&mut self, needles: &str) -> String {
        self.wait_logs(needles, 1)
    }

    /// Waits until `count` lines (seen so far in all) contain every `|`-separated needle;
    /// returns the `count`-th.
    pub fn wait_logs(&mut self, needles: &str, count: usize) -> String {
        let matches = |line: &str| needles.split('|').all(|n| line.contains(n));
        let deadline = Instant::now() + PATIENCE;
        while self.seen.iter().filter(|l| matches(l)).count() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "never logged {count} x {needles:?}; log so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
        self.seen
            .iter()
            .filter(|l| matches(l))
            .nth(count - 1)
            .cloned()
            .unwrap()
    }

    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill has no memory effects; the pid is our own child's.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    pub fn wait_exit(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "drain-e2e did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the load client and returns its summary.
    pub fn summary(mut self) -> serde_json::Value {
        self.signal(libc::SIGTERM);
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        self.wait_exit();
        let line: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| {
            panic!(
                "no summary ({e}) in {out:?}; log:\n{}",
                self.seen.join("\n")
            )
        });
        line["drain_e2e_summary"].clone()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One demo pod: an app and the proxy in front of it, on loopback.
pub struct Pod {
    pub app: Running,
    pub proxy: Running,
    pub addr: SocketAddr,
}

pub fn pod(name: &str) -> Pod {
    let app_listen = format!("127.0.0.1:{}", free_port());
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let app = Running::start(
        &["app", "--listen", &app_listen, "--work", "20ms"],
        &[("POD_NAME", name)],
        "listening on",
    );
    let proxy = Running::start(
        &[
            "proxy",
            "--listen",
            &addr.to_string(),
            "--upstream",
            &app_listen,
        ],
        &[],
        "listening on",
    );
    Pod { app, proxy, addr }
}
