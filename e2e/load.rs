//! The load client: on each path (the Service, the emulated load balancer) and in each client
//! mode (`--clients`), a fixed request rate (open loop: a slow backend does not slow the
//! offered load) or, in the stream mode, `--streams` streams kept open; every outcome counted
//! per mode, path and second. On SIGTERM (`drain-e2e stop`) or after --duration it waits for
//! the requests in flight and prints one JSON line, `{"drain_e2e_summary": ...}`, on stdout.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;

use crate::clients::{self, H2Connections, KeepalivePool, Mode, Outcome, Target};
use crate::clock;
use crate::http;
use crate::lb;
use crate::stream;
use crate::tally::{SharedTally, Summary};

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
    use std::sync::Mutex;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

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
