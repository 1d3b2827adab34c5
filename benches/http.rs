//! `make bench`: drain-webhook against the baseline (examples/baseline_server.rs, same TLS,
//! HTTP/2 and axum stack, a handler that only parses and allows), both driven by h2load the
//! way the API server drives a webhook: TLS + HTTP/2, kept-alive connections, `POST /mutate`.
//!
//! Per pod shape (benches/common): closed-loop runs (fixed connections x streams, the same
//! number of requests for both servers, rounds alternating between them, the median round
//! counts) for reviews/s, and a run paced at 1,000 reviews/s for the latency a real API server
//! sees. Also: time from process start to `/readyz` = 200, and
//! peak RSS (`VmHWM`) of each server after the loads. Prints a table, writes
//! `target/bench/results.json`.
//!
//! Runs only under `cargo bench --bench http` (scripts/bench.sh passes the binaries in
//! `DRAIN_BENCH_SERVER` and `DRAIN_BENCH_BASELINE`); under `cargo test` it does nothing.
//! Only loopback addresses are used.

mod common;
// The bench's own parts, beside it (a bench root's `mod` would look in benches/).
#[path = "http/cpu.rs"]
mod cpu;
#[path = "http/server.rs"]
mod server;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use cpu::{CpuClock, CpuPerReview, check_cpu_readings};
use server::{Server, free_port};

/// Knobs, from the environment (defaults in brackets).
struct Config {
    server: PathBuf,
    baseline: PathBuf,
    out_dir: PathBuf,
    /// Connections [4] and streams per connection [8] of the closed-loop runs.
    connections: u32,
    streams: u32,
    /// Requests of a closed-loop run for the small and seed shapes [20000]; wide [4000].
    requests: u32,
    wide_requests: u32,
    /// Closed-loop rounds per server and shape [3]; the median round counts.
    rounds: u32,
    /// Total rate [1000/s] and length [3 s] of the paced runs.
    rate: u32,
    paced_seconds: u32,
}

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_path(name: &str) -> PathBuf {
    std::env::var_os(name)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{name} is not set (run scripts/bench.sh)"))
}

/// Figures of one h2load run.
#[derive(Debug, Clone, Copy)]
struct Run {
    reviews_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// CPU time per review: the server's (all its threads) and h2load's, in µs.
    cpu: CpuPerReview,
}

impl Run {
    /// `p50 / p99 / max` in ms, for the table.
    fn latencies(&self) -> String {
        format!(
            "{:.2} / {:.2} / {:.2}",
            self.p50_ms, self.p99_ms, self.max_ms
        )
    }

    fn json(&self) -> Value {
        json!({
            "reviews_per_second": round(self.reviews_per_second, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "cpu_per_review": self.cpu.json(),
        })
    }
}

/// One row of the table: a shape, both servers' median closed-loop run and paced run.
struct Row {
    name: &'static str,
    bytes: usize,
    closed: Run,
    paced: Run,
    base_closed: Run,
    base_paced: Run,
    server_rounds: Vec<Run>,
    baseline_rounds: Vec<Run>,
}

/// The run with the median throughput (the upper one of an even count).
fn median_run(runs: &[Run]) -> Run {
    let mut sorted = runs.to_vec();
    sorted.sort_by(|a, b| a.reviews_per_second.total_cmp(&b.reviews_per_second));
    sorted[sorted.len() / 2]
}

fn rates(runs: &[Run]) -> Vec<f64> {
    runs.iter()
        .map(|run| round(run.reviews_per_second, 1))
        .collect()
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

fn out_dir() -> PathBuf {
    env_path("DRAIN_BENCH_OUT")
}

/// Runs h2load against `server` with `body`; `rate` paces each connection (`--rps`).
fn h2load(
    config: &Config,
    server: &Server,
    body: &Path,
    requests: u32,
    rate: Option<u32>,
    log: &Path,
) -> Run {
    // h2load appends to its log file.
    let _ = std::fs::remove_file(log);
    let mut command = Command::new("h2load");
    command
        .args(["-n", &requests.to_string()])
        .args(["-c", &config.connections.to_string()])
        .args(["-m", &config.streams.to_string()])
        .args(["-t", "1"])
        .arg("-d")
        .arg(body)
        .args(["-H", "content-type: application/json"])
        .arg("--log-file")
        .arg(log)
        .arg(server.url());
    if let Some(rate) = rate {
        command.arg(format!("--rps={}", (rate / config.connections).max(1)));
    }
    let clock = CpuClock::start(server.child.id());
    let output = command
        .output()
        .expect("h2load runs (scripts/install-bench-tools.sh)");
    let cpu = clock.per_review(requests);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "h2load failed:\n{stdout}");
    let succeeded = field_after(&stdout, "done, ", " succeeded");
    let ok = field_after(&stdout, "status codes: ", " 2xx");
    assert!(
        succeeded == Some(f64::from(requests)) && ok == Some(f64::from(requests)),
        "not every request succeeded with a 2xx:\n{stdout}"
    );
    let reviews_per_second = field_after(&stdout, "s, ", " req/s").expect("h2load prints req/s");
    let mut micros: Vec<u64> = std::fs::read_to_string(log)
        .expect("h2load log")
        .lines()
        .filter_map(|line| line.split('\t').nth(2)?.trim().parse().ok())
        .collect();
    assert_eq!(micros.len(), requests as usize, "one log line per request");
    micros.sort_unstable();
    let at = |q: f64| {
        let index = ((micros.len() as f64 * q).ceil() as usize).clamp(1, micros.len()) - 1;
        micros[index] as f64 / 1000.0
    };
    Run {
        reviews_per_second,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: at(1.0),
        cpu,
    }
}

/// The number between `before` and `after` on the line that has both.
fn field_after(text: &str, before: &str, after: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let start = line.find(before)? + before.len();
        let end = start + line[start..].find(after)?;
        line[start..end].trim().parse().ok()
    })
}

/// The answer of one review through curl (a sanity check that the server really patches).
fn answer_of(url: &str, body: &Path) -> Option<Value> {
    let output = Command::new("curl")
        .args(["-sk", "--http2", "-H", "content-type: application/json"])
        .arg("--data-binary")
        .arg(format!("@{}", body.display()))
        .arg(url)
        .output()
        .ok()?;
    serde_json::from_slice(&output.stdout).ok()
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let memory_kib = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    let h2load = Command::new("h2load")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    json!({
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu_model": model,
        "memory_gib": round(memory_kib as f64 / 1024.0 / 1024.0, 1),
        "load_generator": h2load,
    })
}

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        // Under `cargo test --all-targets`: no load, only a check that both CPU readings
        // see time being spent, so a bench run cannot report zeros.
        check_cpu_readings();
        eprintln!("benches/http.rs: runs under `make bench` only");
        return;
    }
    let config = Config {
        server: env_path("DRAIN_BENCH_SERVER"),
        baseline: env_path("DRAIN_BENCH_BASELINE"),
        out_dir: out_dir(),
        connections: env_u32("DRAIN_BENCH_CONNECTIONS", 4),
        streams: env_u32("DRAIN_BENCH_STREAMS", 8),
        requests: env_u32("DRAIN_BENCH_REQUESTS", 20_000),
        wide_requests: env_u32("DRAIN_BENCH_WIDE_REQUESTS", 4_000),
        rounds: env_u32("DRAIN_BENCH_ROUNDS", 3).max(1),
        rate: env_u32("DRAIN_BENCH_RATE", 1_000),
        paced_seconds: env_u32("DRAIN_BENCH_PACED_SECONDS", 3),
    };
    std::fs::create_dir_all(config.out_dir.join("bodies")).expect("output directory");

    let shapes = common::shapes();
    let bodies: Vec<(PathBuf, usize)> = shapes
        .iter()
        .map(|shape| {
            let body = common::review(&shape.pod);
            let path = config
                .out_dir
                .join("bodies")
                .join(format!("{}.json", shape.name));
            std::fs::write(&path, &body).expect("body written");
            (path, body.len())
        })
        .collect();

    let (tls, admin) = (free_port(), free_port());
    let mut command = Command::new(&config.server);
    command
        .args(["serve", "--no-cluster", "--kube-version", "1.34"])
        .args(["--listen", &tls.to_string()])
        .args(["--admin-listen", &admin.to_string()])
        .args(["--shutdown-delay", "0s"])
        // As the chart runs it: one JSON log line per review, at info.
        .args(["--log-format", "json", "--log-level", "info"]);
    let server = Server::start("drain-webhook", command, tls, admin);

    let (tls, admin) = (free_port(), free_port());
    let mut command = Command::new(&config.baseline);
    command.arg(tls.to_string()).arg(admin.to_string());
    let baseline = Server::start("baseline", command, tls, admin);

    // Both servers must answer every shape: the real one with a patch, the baseline without.
    for (shape, (body, _)) in shapes.iter().zip(&bodies) {
        for (server, patched) in [(&server, true), (&baseline, false)] {
            let answer = answer_of(&server.url(), body).unwrap_or_else(|| {
                panic!("{} {}: no JSON answer via curl", server.label, shape.name)
            });
            let response = &answer["response"];
            assert_eq!(response["allowed"], true, "{} {}", server.label, shape.name);
            assert_eq!(
                response.get("patch").is_some(),
                patched,
                "{} {}: {response}",
                server.label,
                shape.name
            );
        }
    }

    let mut rows = Vec::new();
    for (shape, (body, body_bytes)) in shapes.iter().zip(&bodies) {
        let requests = if shape.name == "wide" {
            config.wide_requests
        } else {
            config.requests
        };
        let paced = config.rate * config.paced_seconds;
        let targets = [&server, &baseline];
        let log = |target: &Server, kind: &str| {
            config
                .out_dir
                .join(format!("{}-{}-{kind}.log", target.label, shape.name))
        };
        // Warm-up: connections, TLS sessions, allocator pools.
        for target in targets {
            let warmup = log(target, "warmup");
            h2load(&config, target, body, requests / 10, None, &warmup);
        }
        // Closed loop: rounds alternate between the two servers, so a drift of the machine
        // (another process, the clock) weighs on both alike; each server's median round counts.
        let mut rounds: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
        for round in 0..config.rounds {
            for (target, runs) in targets.iter().zip(&mut rounds) {
                let closed = log(target, &format!("closed-{round}"));
                runs.push(h2load(&config, target, body, requests, None, &closed));
            }
        }
        let [(closed, server_rounds), (base_closed, baseline_rounds)] =
            rounds.map(|runs| (median_run(&runs), runs));
        let [paced, base_paced] = targets.map(|target| {
            let paced_log = log(target, "paced");
            h2load(&config, target, body, paced, Some(config.rate), &paced_log)
        });
        rows.push(Row {
            name: shape.name,
            bytes: *body_bytes,
            closed,
            paced,
            base_closed,
            base_paced,
            server_rounds,
            baseline_rounds,
        });
    }

    let server_rss = server.peak_rss_kib();
    let baseline_rss = baseline.peak_rss_kib();
    let (server_startup, baseline_startup) = (server.startup, baseline.startup);
    server.stop();
    baseline.stop();

    // The table.
    println!();
    println!(
        "drain-webhook vs baseline: {} connections x {} streams, TLS + HTTP/2; paced at {}/s for {} s",
        config.connections, config.streams, config.rate, config.paced_seconds
    );
    println!();
    println!(
        "| shape | body | server reviews/s | baseline reviews/s | ratio | p50 / p99 / max ms (closed loop) | p50 / p99 / max ms at {}/s | baseline at {}/s |",
        config.rate, config.rate
    );
    println!("| --- | ---: | ---: | ---: | ---: | --- | --- | --- |");
    let mut shapes_json = Vec::new();
    for row in &rows {
        let ratio = row.closed.reviews_per_second / row.base_closed.reviews_per_second;
        println!(
            "| {} | {:.1} KB | {:.0} | {:.0} | {ratio:.2} | {} | {} | {} |",
            row.name,
            row.bytes as f64 / 1000.0,
            row.closed.reviews_per_second,
            row.base_closed.reviews_per_second,
            row.closed.latencies(),
            row.paced.latencies(),
            row.base_paced.latencies(),
        );
        shapes_json.push(json!({
            "shape": row.name,
            "body_bytes": row.bytes,
            "server": {"closed_loop": row.closed.json(), "paced": row.paced.json()},
            "baseline": {"closed_loop": row.base_closed.json(), "paced": row.base_paced.json()},
            "throughput_ratio": round(ratio, 3),
            "closed_loop_rounds": {
                "server_reviews_per_second": rates(&row.server_rounds),
                "baseline_reviews_per_second": rates(&row.baseline_rounds),
            },
        }));
    }
    println!();
    println!(
        "CPU per review in the median closed-loop round (server: all its threads; h2load: the one driving it):"
    );
    println!();
    println!(
        "| shape | drain-webhook µs | h2load µs | baseline µs | h2load µs | baseline sum / drain-webhook sum |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for row in &rows {
        let (ours, floor) = (row.closed.cpu, row.base_closed.cpu);
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} |",
            row.name,
            ours.server_us,
            ours.h2load_us,
            floor.server_us,
            floor.h2load_us,
            floor.total_us() / ours.total_us()
        );
    }
    println!();
    println!(
        "peak RSS (VmHWM after all loads): drain-webhook {:.1} MiB, baseline {:.1} MiB",
        server_rss as f64 / 1024.0,
        baseline_rss as f64 / 1024.0
    );
    println!(
        "start to /readyz = 200: drain-webhook {:.1} ms, baseline {:.1} ms",
        server_startup.as_secs_f64() * 1000.0,
        baseline_startup.as_secs_f64() * 1000.0
    );

    let results = json!({
        "machine": machine(),
        "load": {
            "connections": config.connections,
            "streams_per_connection": config.streams,
            "requests": config.requests,
            "closed_loop_rounds": config.rounds,
            "wide_requests": config.wide_requests,
            "paced_rate_per_second": config.rate,
            "paced_seconds": config.paced_seconds,
        },
        "shapes": shapes_json,
        "peak_rss_mib": {
            "server": round(server_rss as f64 / 1024.0, 1),
            "baseline": round(baseline_rss as f64 / 1024.0, 1),
        },
        "startup_ms": {
            "server": round(server_startup.as_secs_f64() * 1000.0, 1),
            "baseline": round(baseline_startup.as_secs_f64() * 1000.0, 1),
        },
    });
    let path = config.out_dir.join("http.json");
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&results).expect("results serialize"),
    )
    .expect("results written");
    println!("wrote {}", path.display());
}
