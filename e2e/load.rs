//! The load client: on each path (the Service, the emulated load balancer) and in each client
//! mode (`--clients`), a fixed request rate (open loop: a slow backend does not slow the
//! offered load) or, in the stream mode, `--streams` streams kept open; every outcome counted
//! per mode, path and second. On SIGTERM (`drain-e2e stop`) or after --duration it waits for
//! the requests in flight and prints one JSON line, `{"drain_e2e_summary": ...}`, on stdout.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;

use crate::clients::{self, H2Connections, KeepalivePool, Mode, Outcome, Target};
use crate::clock;
use crate::http::{self, Failure, Lost};
use crate::lb;
use crate::stream::{self, EndKind, StreamEnd};

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
    /// Client modes, each on every path: new, keepalive, h2, stream.
    #[arg(long, value_delimiter = ',', default_value = "new,keepalive,h2,stream")]
    pub clients: Vec<Mode>,
    /// Requests per second on each path, in each request mode (new, keepalive, h2).
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
    /// Streams kept open on each path in the stream mode.
    #[arg(long, default_value_t = 10)]
    pub streams: u32,
    /// A request with no complete answer after this long is lost (timeout); a stream with no
    /// message for this long has stalled.
    #[arg(long, default_value = "2s", value_parser = crate::parse_duration)]
    pub timeout: Duration,
    /// Stop on its own after this long (default: run until SIGTERM).
    #[arg(long, value_parser = crate::parse_duration)]
    pub duration: Option<Duration>,
}

/// The counts of one path in one mode. In the request modes a unit is a request; in the
/// stream mode the request fields count the streams opened (a failed open is retried and
/// loses nothing by itself) and `stream` counts messages and how streams ended.
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
    /// Requests that succeeded only on their one retry (keepalive, h2); not lost.
    #[serde(default)]
    pub retried: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamCounts>,
    /// Per second since the load started: `[second, units, lost units]`, where a unit is a
    /// request (by the second it started) or, in the stream mode, a message received and a
    /// lost unit a message missing or a stream that ended unclean.
    pub series: Vec<[u64; 3]>,
}

/// The stream mode's counts of one path.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamCounts {
    pub messages: u64,
    /// Messages never received: gaps in the sequence, across a reconnect or inside a stream.
    pub missing: u64,
    pub clean: u64,
    pub reset: u64,
    pub stalled: u64,
    /// Streams still open when the load stopped.
    pub open_at_stop: u64,
}

impl PathCounts {
    /// What this path lost: failed requests, or, for streams, missing messages plus streams
    /// that ended unclean.
    pub fn lost(&self) -> u64 {
        match &self.stream {
            Some(stream) => stream.missing + stream.reset + stream.stalled,
            None => self.failed(),
        }
    }

    /// Requests (or stream opens) that failed, whatever the mode.
    pub fn failed(&self) -> u64 {
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
    #[serde(default = "default_mode")]
    pub mode: Mode,
    pub path: String,
    pub at_seconds: f64,
    pub kind: Failure,
    pub detail: String,
}

fn default_mode() -> Mode {
    Mode::New
}

/// Counts per mode and path: `modes["keepalive"]["lb"]`.
pub type ModeCounts = BTreeMap<Mode, BTreeMap<String, PathCounts>>;

/// What the load client reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub namespace: String,
    /// Wall clock of the load's start, seconds since 1970 (to place the rollouts on its axis).
    pub started_unix: f64,
    pub seconds: f64,
    pub rate_per_path: u32,
    #[serde(default)]
    pub streams_per_path: u32,
    pub lb_delay_seconds: f64,
    /// EndpointSlice changes the emulated load balancer applied.
    pub lb_changes_applied: u64,
    pub modes: ModeCounts,
    pub first_lost: Vec<LostRequest>,
    /// Streams that ended other than cleanly (the first `KEEP_STREAM_ENDS`).
    #[serde(default)]
    pub stream_ends: Vec<StreamEnd>,
}

/// How many lost requests are kept with their details.
pub const KEEP_LOST: usize = 20;
/// How many unclean stream ends are kept with their details (the report matches each with the
/// pod that served it).
pub const KEEP_STREAM_ENDS: usize = 5000;

/// Units and lost units per second since the start.
type Seconds = BTreeMap<u64, (u64, u64)>;

/// The counting itself: no I/O, so tests drive it with outcomes of their own.
#[derive(Debug, Default)]
pub struct Tally {
    counts: BTreeMap<(Mode, String), (PathCounts, Seconds)>,
    first_lost: Vec<LostRequest>,
    stream_ends: Vec<StreamEnd>,
}

impl Tally {
    /// Makes a mode's path appear in the report even before (or without) its first request.
    pub fn add_path(&mut self, mode: Mode, path: &str) {
        let (counts, _) = self.entry(mode, path);
        if mode == Mode::Stream {
            counts.stream.get_or_insert_with(StreamCounts::default);
        }
    }

    fn entry(&mut self, mode: Mode, path: &str) -> &mut (PathCounts, Seconds) {
        self.counts.entry((mode, path.to_string())).or_default()
    }

    /// A request started `started` after the load began, with its outcome.
    pub fn record(&mut self, mode: Mode, path: &str, started: Duration, outcome: &Outcome) {
        let (counts, series) = self.entry(mode, path);
        let bucket = series.entry(started.as_secs()).or_default();
        counts.requests += 1;
        bucket.0 += 1;
        counts.retried += u64::from(outcome.retried && outcome.result.is_ok());
        match &outcome.result {
            Ok(_) => counts.ok += 1,
            Err(lost) => {
                *counts.of_mut(lost.kind) += 1;
                bucket.1 += 1;
                self.keep_lost(mode, path, started, lost);
            }
        }
    }

    fn keep_lost(&mut self, mode: Mode, path: &str, started: Duration, lost: &Lost) {
        if self.first_lost.len() < KEEP_LOST {
            self.first_lost.push(LostRequest {
                mode,
                path: path.to_string(),
                at_seconds: started.as_secs_f64(),
                kind: lost.kind,
                detail: lost.detail.clone(),
            });
        }
    }

    /// A stream (re)connection attempt and its outcome.
    pub fn stream_opened(&mut self, path: &str, at: Duration, outcome: &Result<u16, Lost>) {
        self.add_path(Mode::Stream, path);
        let (counts, _) = self.entry(Mode::Stream, path);
        counts.requests += 1;
        match outcome {
            Ok(_) => counts.ok += 1,
            Err(lost) => {
                *counts.of_mut(lost.kind) += 1;
                self.keep_lost(Mode::Stream, path, at, lost);
            }
        }
    }

    /// Messages received (and found missing) on a stream of `path`.
    pub fn messages(&mut self, path: &str, at: Duration, received: u64, missing: u64) {
        self.add_path(Mode::Stream, path);
        let (counts, series) = self.entry(Mode::Stream, path);
        let stream = counts.stream.as_mut().expect("added");
        stream.messages += received;
        stream.missing += missing;
        let bucket = series.entry(at.as_secs()).or_default();
        bucket.0 += received;
        bucket.1 += missing;
    }

    pub fn stream_ended(&mut self, at: Duration, end: StreamEnd) {
        self.add_path(Mode::Stream, &end.path);
        let (counts, series) = self.entry(Mode::Stream, &end.path);
        let stream = counts.stream.as_mut().expect("added");
        match end.kind {
            EndKind::Clean => stream.clean += 1,
            EndKind::Reset => stream.reset += 1,
            EndKind::Stalled => stream.stalled += 1,
        }
        if end.kind != EndKind::Clean {
            series.entry(at.as_secs()).or_default().1 += 1;
            if self.stream_ends.len() < KEEP_STREAM_ENDS {
                self.stream_ends.push(end);
            }
        }
    }

    pub fn stream_open_at_stop(&mut self, path: &str) {
        self.add_path(Mode::Stream, path);
        let (counts, _) = self.entry(Mode::Stream, path);
        counts.stream.as_mut().expect("added").open_at_stop += 1;
    }

    /// Per-mode, per-path counts with their per-second series (seconds without requests
    /// included, on one axis for all).
    pub fn modes(&self) -> ModeCounts {
        let last = self
            .counts
            .values()
            .filter_map(|(_, series)| series.keys().next_back().copied())
            .max();
        let mut out = ModeCounts::new();
        for ((mode, path), (counts, series)) in &self.counts {
            let mut counts = counts.clone();
            counts.series = match last {
                Some(last) => (0..=last)
                    .map(|second| {
                        let (units, lost) = series.get(&second).copied().unwrap_or_default();
                        [second, units, lost]
                    })
                    .collect(),
                None => Vec::new(),
            };
            out.entry(*mode).or_default().insert(path.clone(), counts);
        }
        out
    }

    pub fn first_lost(&self) -> &[LostRequest] {
        &self.first_lost
    }

    pub fn stream_ends(&self) -> &[StreamEnd] {
        &self.stream_ends
    }
}

pub type SharedTally = Arc<Mutex<Tally>>;

pub async fn run(args: LoadArgs) -> anyhow::Result<ExitCode> {
    if args.service.is_none() && args.lb_service.is_none() {
        anyhow::bail!("nothing to load: give --service IP:PORT and/or --lb-service NAME");
    }
    if args.rate == 0 {
        anyhow::bail!("--rate 0: give at least 1 request per second");
    }
    let mut modes = args.clients.clone();
    modes.sort();
    modes.dedup();
    if modes.is_empty() {
        anyhow::bail!("--clients is empty: give some of new, keepalive, h2, stream");
    }
    let start = Instant::now();
    let started_unix = clock::now_unix();
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
        paths.push(("lb", Target::balanced(shared, start)));
    }
    eprintln!(
        "drain-e2e load: modes {:?} on each of {:?}: {} requests/s per request mode, {} streams; timeout {:?}",
        modes.iter().map(|m| m.name()).collect::<Vec<_>>(),
        paths.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        args.rate,
        args.streams,
        args.timeout
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut loops = JoinSet::new();
    for (path, target) in &paths {
        for mode in &modes {
            tally.lock().expect("tally").add_path(*mode, path);
            if *mode == Mode::Stream {
                for _ in 0..args.streams {
                    loops.spawn(stream::keep_open(
                        path,
                        target.clone(),
                        args.timeout,
                        start,
                        tally.clone(),
                        stop_rx.clone(),
                    ));
                }
            } else {
                loops.spawn(path_loop(
                    *mode,
                    path,
                    target.clone(),
                    args.rate,
                    args.timeout,
                    start,
                    tally.clone(),
                    stop_rx.clone(),
                ));
            }
        }
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
        streams_per_path: if modes.contains(&Mode::Stream) {
            args.streams
        } else {
            0
        },
        lb_delay_seconds: args.lb_delay.as_secs_f64(),
        lb_changes_applied: view.map_or(0, |v| v.lock().expect("view").applied),
        modes: tally.modes(),
        first_lost: tally.first_lost().to_vec(),
        stream_ends: tally.stream_ends().to_vec(),
    };
    for lost in &summary.first_lost {
        eprintln!(
            "drain-e2e load: lost at {:.2}s on {} ({}): {:?}: {}",
            lost.at_seconds,
            lost.path,
            lost.mode.name(),
            lost.kind,
            lost.detail
        );
    }
    println!("{}", serde_json::json!({ "drain_e2e_summary": summary }));
    Ok(ExitCode::SUCCESS)
}

/// The connections a request mode keeps between requests of one path.
enum Connections {
    New,
    Keepalive(KeepalivePool),
    H2(H2Connections),
}

impl Connections {
    async fn request(&self, target: &Target, timeout: Duration) -> Outcome {
        match self {
            Connections::New => Outcome::first_try(match target.pick() {
                Ok(addr) => http::get(addr, timeout).await,
                Err(lost) => Err(lost),
            }),
            Connections::Keepalive(pool) => clients::within(timeout, pool.request(target)).await,
            Connections::H2(connections) => {
                clients::within(timeout, connections.request(target)).await
            }
        }
    }
}

#[allow(clippy::too_many_arguments)] // one loop's whole setting, named at the call
async fn path_loop(
    mode: Mode,
    path: &'static str,
    target: Target,
    rate: u32,
    timeout: Duration,
    start: Instant,
    tally: SharedTally,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let connections = Arc::new(match mode {
        Mode::Keepalive => Connections::Keepalive(KeepalivePool::default()),
        Mode::H2 => Connections::H2(H2Connections::default()),
        Mode::New | Mode::Stream => Connections::New,
    });
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / rate);
    // Behind schedule (a stalled runtime): fire the missed ticks, keep the offered rate.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut in_flight = JoinSet::new();
    // The first answer and the first loss of each mode and path are logged as they happen, so
    // that a run (and a test) can follow the load without waiting for its summary.
    let firsts = Arc::new((AtomicBool::new(false), AtomicBool::new(false)));
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            _ = ticker.tick() => {
                let started = start.elapsed();
                let (tally, target, connections, firsts) =
                    (tally.clone(), target.clone(), connections.clone(), firsts.clone());
                in_flight.spawn(async move {
                    let outcome = connections.request(&target, timeout).await;
                    tally.lock().expect("tally").record(mode, path, started, &outcome);
                    let (answered, lost) = &*firsts;
                    match &outcome.result {
                        Ok(_) if !answered.swap(true, Ordering::SeqCst) => {
                            eprintln!("drain-e2e load: first answer: {}/{path}", mode.name());
                        }
                        Err(error) if !lost.swap(true, Ordering::SeqCst) => eprintln!(
                            "drain-e2e load: first lost: {}/{path}: {:?}: {}",
                            mode.name(),
                            error.kind,
                            error.detail
                        ),
                        _ => {}
                    }
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

    fn ok() -> Outcome {
        Outcome::first_try(Ok(200))
    }

    fn lost(kind: Failure) -> Outcome {
        Outcome::first_try(Err(Lost {
            kind,
            detail: format!("{kind:?}"),
        }))
    }

    #[test]
    fn counts_per_mode_path_kind_and_second() {
        let mut tally = Tally::default();
        tally.add_path(Mode::New, "lb");
        let ms = Duration::from_millis;
        let new = Mode::New;
        tally.record(new, "service", ms(100), &ok());
        tally.record(new, "service", ms(900), &lost(Failure::Refused));
        tally.record(new, "service", ms(2500), &lost(Failure::Http5xx));
        tally.record(new, "service", ms(2600), &lost(Failure::Reset));
        tally.record(new, "service", ms(2700), &lost(Failure::Timeout));
        tally.record(new, "service", ms(2800), &ok());
        let retried = Outcome {
            result: Ok(200),
            retried: true,
        };
        tally.record(Mode::Keepalive, "service", ms(2900), &retried);
        let modes = tally.modes();
        let service = &modes[&new]["service"];
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
        assert_eq!(modes[&new]["lb"].requests, 0);
        assert_eq!(
            modes[&new]["lb"].series,
            vec![[0, 0, 0], [1, 0, 0], [2, 0, 0]]
        );
        // Another mode is counted apart; a retried success is not lost.
        let keepalive = &modes[&Mode::Keepalive]["service"];
        assert_eq!(
            (keepalive.requests, keepalive.retried, keepalive.lost()),
            (1, 1, 0)
        );
        assert_eq!(tally.first_lost().len(), 4);
        assert_eq!(tally.first_lost()[0].kind, Failure::Refused);
        assert_eq!(tally.first_lost()[0].at_seconds, 0.9);
    }

    #[test]
    fn streams_count_messages_missing_and_unclean_ends() {
        let mut tally = Tally::default();
        let s = Duration::from_secs;
        tally.stream_opened("lb", s(0), &Ok(200));
        tally.messages("lb", s(0), 10, 0);
        let end = |kind| StreamEnd {
            path: "lb".into(),
            at_unix: 1.0,
            pod: "demo-1".into(),
            kind,
            detail: String::new(),
        };
        tally.stream_ended(s(1), end(EndKind::Clean));
        tally.stream_opened(
            "lb",
            s(1),
            &Err(Lost {
                kind: Failure::Refused,
                detail: "refused".into(),
            }),
        );
        tally.stream_opened("lb", s(1), &Ok(200));
        tally.messages("lb", s(2), 7, 3);
        tally.stream_ended(s(2), end(EndKind::Reset));
        tally.stream_open_at_stop("lb");
        let lb = &tally.modes()[&Mode::Stream]["lb"];
        let stream = lb.stream.as_ref().unwrap();
        assert_eq!((lb.requests, lb.ok, lb.refused), (3, 2, 1));
        assert_eq!(
            (
                stream.messages,
                stream.missing,
                stream.clean,
                stream.reset,
                stream.open_at_stop
            ),
            (17, 3, 1, 1, 1)
        );
        // Lost: 3 messages and one unclean end; the refused reconnect lost nothing by itself.
        assert_eq!(lb.lost(), 4);
        assert_eq!(lb.series, vec![[0, 10, 0], [1, 0, 0], [2, 7, 4]]);
        assert_eq!(tally.stream_ends().len(), 1);
    }

    #[test]
    fn keeps_only_the_first_lost_details() {
        let mut tally = Tally::default();
        for i in 0..(KEEP_LOST as u64 + 5) {
            tally.record(
                Mode::New,
                "lb",
                Duration::from_secs(i),
                &lost(Failure::NoBackend),
            );
        }
        assert_eq!(tally.first_lost().len(), KEEP_LOST);
        assert_eq!(
            tally.modes()[&Mode::New]["lb"].no_backend,
            KEEP_LOST as u64 + 5
        );
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
        let start = Instant::now();
        // The balancer sends to a live and a dead backend alternately.
        let view = Arc::new(Mutex::new(lb::DelayedEndpoints::new(
            Duration::ZERO,
            [good, refused].into_iter().collect(),
        )));
        let tally: SharedTally = Arc::default();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut loops = JoinSet::new();
        loops.spawn(path_loop(
            Mode::New,
            "service",
            Target::Fixed(good),
            200,
            Duration::from_secs(5),
            start,
            tally.clone(),
            stop_rx.clone(),
        ));
        loops.spawn(path_loop(
            Mode::New,
            "lb",
            Target::balanced(view, start),
            200,
            Duration::from_secs(5),
            start,
            tally.clone(),
            stop_rx,
        ));
        // Wait for some requests, not for a time: the test holds on a slow machine too.
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let modes = tally.lock().unwrap().modes();
            let paths = modes.get(&Mode::New);
            if paths
                .and_then(|p| p.get("lb"))
                .is_some_and(|p| p.requests >= 20)
                && paths
                    .and_then(|p| p.get("service"))
                    .is_some_and(|p| p.requests >= 20)
            {
                break;
            }
        }
        stop_tx.send(true).unwrap();
        while loops.join_next().await.is_some() {}
        let modes = tally.lock().unwrap().modes();
        let (service, lb) = (&modes[&Mode::New]["service"], &modes[&Mode::New]["lb"]);
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
        let start = Instant::now();
        let task = tokio::spawn(path_loop(
            Mode::Keepalive,
            "lb",
            Target::balanced(view, start),
            100,
            Duration::from_secs(1),
            start,
            tally.clone(),
            stop_rx,
        ));
        let requests = |tally: &SharedTally| {
            tally
                .lock()
                .unwrap()
                .modes()
                .get(&Mode::Keepalive)
                .and_then(|p| p.get("lb"))
                .map_or(0, |p| p.requests)
        };
        while requests(&tally) < 5 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        let lb = &tally.lock().unwrap().modes()[&Mode::Keepalive]["lb"];
        assert_eq!(lb.no_backend, lb.requests);
    }
}
