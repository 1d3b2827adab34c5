//! Where a closed loop's CPU goes: the server's threads and the h2load driving it, per review.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::round;

/// Where a closed loop's CPU goes, per review. The server and h2load share the machine's
/// cores, so the throughput ratio follows the ratio of the sums (docs/benchmarks.md, "Reading
/// the results").
#[derive(Debug, Clone, Copy)]
pub(super) struct CpuPerReview {
    pub(super) server_us: f64,
    pub(super) h2load_us: f64,
}

impl CpuPerReview {
    pub(super) fn total_us(&self) -> f64 {
        self.server_us + self.h2load_us
    }

    pub(super) fn json(&self) -> Value {
        json!({
            "server_us": round(self.server_us, 2),
            "h2load_us": round(self.h2load_us, 2),
        })
    }
}

/// The CPU both sides have used when a run starts: [`CpuClock::per_review`] after it.
pub(super) struct CpuClock {
    server_pid: u32,
    server_ns: u64,
    children_ns: u64,
}

impl CpuClock {
    /// Read before h2load starts; `server_pid` is the server under load.
    pub(super) fn start(server_pid: u32) -> Self {
        Self {
            server_pid,
            server_ns: process_cpu_ns(server_pid),
            children_ns: waited_children_cpu_ns(),
        }
    }

    /// Read after h2load was waited for: what each side spent since [`CpuClock::start`],
    /// per review.
    pub(super) fn per_review(&self, requests: u32) -> CpuPerReview {
        let per_review = |before: u64, after: u64| {
            after.saturating_sub(before) as f64 / 1000.0 / f64::from(requests)
        };
        CpuPerReview {
            server_us: per_review(self.server_ns, process_cpu_ns(self.server_pid)),
            h2load_us: per_review(self.children_ns, waited_children_cpu_ns()),
        }
    }
}

/// The CPU time a process has used so far, all threads, in ns: the first field of each
/// `/proc/PID/task/TID/schedstat` (ns on the CPU, exact where `/proc/PID/stat` counts ticks).
/// Threads that ended before the call are not counted: the servers keep theirs for the run.
fn process_cpu_ns(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap_or_else(|err| panic!("/proc/{pid}/task: {err}"));
    tasks
        .filter_map(|task| {
            let path = task.ok()?.path().join("schedstat");
            let text = std::fs::read_to_string(path).ok()?;
            text.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}

/// The readings the table's CPU columns come from grow while CPU is spent: this process
/// spinning, a child (awk) counting. Each waits for growth, with a bound no load reaches.
pub(super) fn check_cpu_readings() {
    let before = process_cpu_ns(std::process::id());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut spins = 0u64;
    while process_cpu_ns(std::process::id()) <= before {
        spins = std::hint::black_box(spins.wrapping_add(1));
        assert!(
            Instant::now() < deadline,
            "/proc/self/task/*/schedstat never grew"
        );
    }
    let before = waited_children_cpu_ns();
    let status = Command::new("awk")
        .arg("BEGIN { for (i = 0; i < 3000000; i++) s += i }")
        .status()
        .expect("awk runs");
    assert!(status.success(), "awk failed: {status}");
    assert!(
        waited_children_cpu_ns() > before,
        "getrusage(RUSAGE_CHILDREN) did not count a child that spent CPU"
    );
}

/// User plus system time of the children this process has waited for, in ns
/// (`getrusage(RUSAGE_CHILDREN)`): around one h2load, what that h2load used.
#[allow(unsafe_code)]
fn waited_children_cpu_ns() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given and touches nothing else.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage(RUSAGE_CHILDREN)");
    // SAFETY: initialised by the successful call above (and zeroed before it).
    let usage = unsafe { usage.assume_init() };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    ns(usage.ru_utime) + ns(usage.ru_stime)
}
