//! The load client: a fixed request rate on each path (open loop: a slow backend does not slow
//! the offered load), every request on a new connection, every outcome counted per path and
//! per second. On SIGTERM (`drain-e2e stop`) or after --duration it waits for the requests in
//! flight and prints one JSON line, `{"drain_e2e_summary": ...}`, on stdout.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;

use crate::http::{self, Failure, Lost};
use crate::lb;

#[derive(clap::Args)]
pub struct LoadArgs {
    /// Namespace whose load this is (reported; also where the EndpointSlices are watched).
    #[arg(long, env = "POD_NAMESPACE")]
    pub namespace: String,
    /// The Service's ClusterIP and port (an IP: the cluster may have no DNS).
    #[arg(long)]
    pub service: Option<SocketAddr>,
    /// The Service whose EndpointSlices the emulated load balancer follows.
    #[arg(long)]
    pub lb_service: Option<String>,
    /// The pods' port the load balancer sends to.
    #[arg(long, default_value_t = 8080)]
    pub lb_port: u16,
    /// L: how late the load balancer applies EndpointSlice changes.
    #[arg(long, default_value = "5s", value_parser = crate::parse_duration)]
    pub lb_delay: Duration,
    /// Requests per second on each path.
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
    /// A request with no complete answer after this long is lost (timeout).
    #[arg(long, default_value = "2s", value_parser = crate::parse_duration)]
    pub timeout: Duration,
    /// Stop on its own after this long (default: run until SIGTERM).
    #[arg(long, value_parser = crate::parse_duration)]
    pub duration: Option<Duration>,
}

/// The counts of one path.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PathCounts {
    pub requests: u64,
    pub ok: u64,
    pub refused: u64,
    pub reset: u64,
    pub timeout: u64,
    pub http_5xx: u64,
    pub no_backend: u64,
    pub other: u64,
    /// Per second since the load started (by the request's start): `[second, requests, lost]`.
    pub series: Vec<[u64; 3]>,
}

impl PathCounts {
    pub fn lost(&self) -> u64 {
        Failure::ALL.iter().map(|kind| self.of(*kind)).sum()
    }

    pub fn of(&self, kind: Failure) -> u64 {
        match kind {
            Failure::Refused => self.refused,
            Failure::Reset => self.reset,
            Failure::Timeout => self.timeout,
            Failure::Http5xx => self.http_5xx,
            Failure::NoBackend => self.no_backend,
            Failure::Other => self.other,
        }
    }

    fn of_mut(&mut self, kind: Failure) -> &mut u64 {
        match kind {
            Failure::Refused => &mut self.refused,
            Failure::Reset => &mut self.reset,
            Failure::Timeout => &mut self.timeout,
            Failure::Http5xx => &mut self.http_5xx,
            Failure::NoBackend => &mut self.no_backend,
            Failure::Other => &mut self.other,
        }
    }
}

/// One lost request, for the log and the report (the first few only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LostRequest {
    pub path: String,
    pub at_seconds: f64,
    pub kind: Failure,
    pub detail: String,
}

/// What the load client reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub namespace: String,
    /// Wall clock of the load's start, seconds since 1970 (to place the rollouts on its axis).
    pub started_unix: f64,
    pub seconds: f64,
    pub rate_per_path: u32,
    pub lb_delay_seconds: f64,
    /// EndpointSlice changes the emulated load balancer applied.
    pub lb_changes_applied: u64,
    pub paths: BTreeMap<String, PathCounts>,
    pub first_lost: Vec<LostRequest>,
}

/// How many lost requests are kept with their details.
pub const KEEP_LOST: usize = 20;

/// Requests and lost requests per second since the start.
type Seconds = BTreeMap<u64, (u64, u64)>;

/// The counting itself: no I/O, so tests drive it with outcomes of their own.
#[derive(Debug, Default)]
pub struct Tally {
    paths: BTreeMap<String, (PathCounts, Seconds)>,
    first_lost: Vec<LostRequest>,
}

impl Tally {
    /// Makes a path appear in the report even before (or without) its first request.
    pub fn add_path(&mut self, path: &str) {
        self.paths.entry(path.to_string()).or_default();
    }

    /// A request started `started` after the load began, with its outcome.
    pub fn record(&mut self, path: &str, started: Duration, outcome: &Result<u16, Lost>) {
        let (counts, series) = self.paths.entry(path.to_string()).or_default();
        let bucket = series.entry(started.as_secs()).or_default();
        counts.requests += 1;
        bucket.0 += 1;
        match outcome {
            Ok(_) => counts.ok += 1,
            Err(lost) => {
                *counts.of_mut(lost.kind) += 1;
                bucket.1 += 1;
                if self.first_lost.len() < KEEP_LOST {
                    self.first_lost.push(LostRequest {
                        path: path.to_string(),
                        at_seconds: started.as_secs_f64(),
                        kind: lost.kind,
                        detail: lost.detail.clone(),
                    });
                }
            }
        }
    }

    /// Per-path counts with their per-second series (seconds without requests included).
    pub fn paths(&self) -> BTreeMap<String, PathCounts> {
        let last = self
            .paths
            .values()
            .filter_map(|(_, series)| series.keys().next_back().copied())
            .max();
        self.paths
            .iter()
            .map(|(name, (counts, series))| {
                let mut counts = counts.clone();
                counts.series = match last {
                    Some(last) => (0..=last)
                        .map(|second| {
                            let (requests, lost) = series.get(&second).copied().unwrap_or_default();
                            [second, requests, lost]
                        })
                        .collect(),
                    None => Vec::new(),
                };
                (name.clone(), counts)
            })
            .collect()
    }

    pub fn first_lost(&self) -> &[LostRequest] {
        &self.first_lost
    }
}

type SharedTally = Arc<Mutex<Tally>>;

/// Where one request of a path goes.
enum Target {
    Fixed(SocketAddr),
    Balanced(lb::Shared),
}

pub async fn run(args: LoadArgs) -> anyhow::Result<ExitCode> {
    if args.service.is_none() && args.lb_service.is_none() {
        anyhow::bail!("nothing to load: give --service IP:PORT and/or --lb-service NAME");
    }
    if args.rate == 0 {
        anyhow::bail!("--rate 0: give at least 1 request per second");
    }
    let start = Instant::now();
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let tally: SharedTally = Arc::default();
    let mut paths = Vec::new();
    if let Some(service) = args.service {
        paths.push(("service", Target::Fixed(service)));
    }
    let mut view = None;
    if let Some(name) = &args.lb_service {
        let client = kube::Client::try_default().await?;
        let shared = lb::watch(
            client,
            &args.namespace,
            name,
            args.lb_port,
            args.lb_delay,
            start,
        )
        .await?;
        view = Some(shared.clone());
        paths.push(("lb", Target::Balanced(shared)));
    }
    eprintln!(
        "drain-e2e load: {} requests/s on each of {:?}, timeout {:?}",
        args.rate,
        paths.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        args.timeout
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut loops = JoinSet::new();
    for (path, target) in paths {
        tally.lock().expect("tally").add_path(path);
        loops.spawn(path_loop(
            path,
            target,
            args.rate,
            args.timeout,
            start,
            tally.clone(),
            stop_rx.clone(),
        ));
    }

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let limit = async {
        match args.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term.recv() => eprintln!("drain-e2e load: SIGTERM, stopping"),
        _ = int.recv() => eprintln!("drain-e2e load: SIGINT, stopping"),
        _ = limit => eprintln!("drain-e2e load: duration reached, stopping"),
    }
    let _ = stop_tx.send(true);
    // Each loop returns once its own requests in flight have their outcome.
    while loops.join_next().await.is_some() {}

    let tally = tally.lock().expect("tally");
    let summary = Summary {
        namespace: args.namespace.clone(),
        started_unix,
        seconds: start.elapsed().as_secs_f64(),
        rate_per_path: args.rate,
        lb_delay_seconds: args.lb_delay.as_secs_f64(),
        lb_changes_applied: view.map_or(0, |v| v.lock().expect("view").applied),
        paths: tally.paths(),
        first_lost: tally.first_lost().to_vec(),
    };
    for lost in &summary.first_lost {
        eprintln!(
            "drain-e2e load: lost at {:.2}s on {}: {:?}: {}",
            lost.at_seconds, lost.path, lost.kind, lost.detail
        );
    }
    println!("{}", serde_json::json!({ "drain_e2e_summary": summary }));
    Ok(ExitCode::SUCCESS)
}

async fn path_loop(
    path: &'static str,
    target: Target,
    rate: u32,
    timeout: Duration,
    start: Instant,
    tally: SharedTally,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / rate);
    // Behind schedule (a stalled runtime): fire the missed ticks, keep the offered rate.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut in_flight = JoinSet::new();
    let mut next_backend = 0usize;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            _ = ticker.tick() => {
                let started = start.elapsed();
                let addr = match &target {
                    Target::Fixed(addr) => Some(*addr),
                    Target::Balanced(view) => {
                        let mut view = view.lock().expect("view");
                        let backends = view.current(started);
                        if backends.is_empty() {
                            None
                        } else {
                            next_backend = next_backend.wrapping_add(1);
                            backends.iter().nth(next_backend % backends.len()).copied()
                        }
                    }
                };
                let tally = tally.clone();
                in_flight.spawn(async move {
                    let outcome = match addr {
                        Some(addr) => http::get(addr, timeout).await,
                        None => Err(Lost {
                            kind: Failure::NoBackend,
                            detail: "the load balancer has no backend".into(),
                        }),
                    };
                    tally.lock().expect("tally").record(path, started, &outcome);
                });
            }
        }
    }
    while in_flight.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    fn lost(kind: Failure) -> Result<u16, Lost> {
        Err(Lost {
            kind,
            detail: format!("{kind:?}"),
        })
    }

    #[test]
    fn counts_per_path_kind_and_second() {
        let mut tally = Tally::default();
        tally.add_path("lb");
        let ms = Duration::from_millis;
        tally.record("service", ms(100), &Ok(200));
        tally.record("service", ms(900), &lost(Failure::Refused));
        tally.record("service", ms(2500), &lost(Failure::Http5xx));
        tally.record("service", ms(2600), &lost(Failure::Reset));
        tally.record("service", ms(2700), &lost(Failure::Timeout));
        tally.record("service", ms(2800), &Ok(200));
        let paths = tally.paths();
        let service = &paths["service"];
        assert_eq!((service.requests, service.ok, service.lost()), (6, 2, 4));
        assert_eq!(
            (
                service.refused,
                service.reset,
                service.timeout,
                service.http_5xx
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(service.series, vec![[0, 2, 1], [1, 0, 0], [2, 4, 3]]);
        // A path without requests has zeros on the same axis.
        assert_eq!(paths["lb"].requests, 0);
        assert_eq!(paths["lb"].series, vec![[0, 0, 0], [1, 0, 0], [2, 0, 0]]);
        assert_eq!(tally.first_lost().len(), 4);
        assert_eq!(tally.first_lost()[0].kind, Failure::Refused);
        assert_eq!(tally.first_lost()[0].at_seconds, 0.9);
    }

    #[test]
    fn keeps_only_the_first_lost_details() {
        let mut tally = Tally::default();
        for i in 0..(KEEP_LOST as u64 + 5) {
            tally.record("lb", Duration::from_secs(i), &lost(Failure::NoBackend));
        }
        assert_eq!(tally.first_lost().len(), KEEP_LOST);
        assert_eq!(tally.paths()["lb"].no_backend, KEEP_LOST as u64 + 5);
    }

    /// A loopback stand-in that answers 200 to every connection, counting them.
    async fn ok_server() -> (SocketAddr, Arc<std::sync::atomic::AtomicU64>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = served.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let count = count.clone();
                tokio::spawn(async move {
                    if let Ok(Some(_)) = http::read_head(&mut s).await {
                        let _ = s.write_all(&http::answer(200, "OK", "ok")).await;
                        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        (addr, served)
    }

    #[tokio::test]
    async fn every_request_is_counted_once_with_its_outcome() {
        let (good, served) = ok_server().await;
        let refused = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        // The balancer sends to a live and a dead backend alternately.
        let view = Arc::new(Mutex::new(lb::DelayedEndpoints::new(
            Duration::ZERO,
            [good, refused].into_iter().collect(),
        )));
        let tally: SharedTally = Arc::default();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let start = Instant::now();
        let mut loops = JoinSet::new();
        loops.spawn(path_loop(
            "service",
            Target::Fixed(good),
            200,
            Duration::from_secs(5),
            start,
            tally.clone(),
            stop_rx.clone(),
        ));
        loops.spawn(path_loop(
            "lb",
            Target::Balanced(view),
            200,
            Duration::from_secs(5),
            start,
            tally.clone(),
            stop_rx,
        ));
        // Wait for some requests, not for a time: the test holds on a slow machine too.
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let paths = tally.lock().unwrap().paths();
            if paths.get("lb").is_some_and(|p| p.requests >= 20)
                && paths.get("service").is_some_and(|p| p.requests >= 20)
            {
                break;
            }
        }
        stop_tx.send(true).unwrap();
        while loops.join_next().await.is_some() {}
        let paths = tally.lock().unwrap().paths();
        let (service, lb) = (&paths["service"], &paths["lb"]);
        assert_eq!(service.lost(), 0, "{service:?}");
        assert_eq!(service.ok, service.requests);
        assert_eq!(lb.ok + lb.refused, lb.requests, "{lb:?}");
        assert!(lb.refused >= 9 && lb.ok >= 9, "{lb:?}");
        // Every ok was answered by the server, and every answer counted.
        let served = served.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(served, service.ok + lb.ok);
        let per_second: u64 = service.series.iter().map(|b| b[1]).sum();
        assert_eq!(per_second, service.requests);
    }

    #[tokio::test]
    async fn an_empty_balancer_counts_no_backend() {
        let view = Arc::new(Mutex::new(lb::DelayedEndpoints::new(
            Duration::ZERO,
            Default::default(),
        )));
        let tally: SharedTally = Arc::default();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(path_loop(
            "lb",
            Target::Balanced(view),
            100,
            Duration::from_secs(1),
            Instant::now(),
            tally.clone(),
            stop_rx,
        ));
        while tally
            .lock()
            .unwrap()
            .paths()
            .get("lb")
            .map_or(0, |p| p.requests)
            < 5
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        let lb = &tally.lock().unwrap().paths()["lb"];
        assert_eq!(lb.no_backend, lb.requests);
    }
}
