//! drain-e2e: the test-only program behind `make e2e` (docs/proof.md), shipped as the third
//! image `make images` writes, so the proof needs no image from anywhere else.
//!
//! - `app`: the demo's application; on SIGTERM (or SIGQUIT) it ends its streams cleanly and
//!   exits at once, cutting requests in flight, the way many apps do.
//! - `proxy`: the demo's front proxy, in front of the app on localhost; behaves like nginx:
//!   SIGHUP moves clients off (keeps accepting, ends the open connections gracefully),
//!   SIGQUIT is graceful (stop accepting, finish what is in flight, keep streams until they
//!   end), SIGTERM is fast.
//! - `load`: steady load in each client mode (new connections, keep-alive, HTTP/2, streams)
//!   along two paths counted apart, the Service's ClusterIP and an emulated load balancer that
//!   applies EndpointSlice changes late; prints its counts as JSON on stop.
//! - `stop`: run with `kubectl exec` in the load pod: asks the load (PID 1) to stop and report.
//! - `holds`: each terminated pod's hold and signal, from the proxy containers' logs.
//! - `results`: assembles `target/e2e/results.json` from what the script collected, with the
//!   webhook's observed drains checked against the holds (`observed`).
//! - `report`: the table, the verdict and the SVG picture from `target/e2e/results.json`.

mod clients;
mod clock;
mod demo;
mod feed;
mod holds;
mod http;
mod lb;
mod load;
mod observed;
mod picture;
mod proxy;
mod report;
mod results;
mod stream;
mod tally;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "drain-e2e",
    version,
    about = "Test-only demo and load client of make e2e"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The demo application: HTTP 200 after --work, streams on /stream; on SIGTERM or SIGQUIT
    /// it ends its streams and exits at once.
    App(demo::AppArgs),
    /// The demo's front proxy: forwards each request to --upstream (502 when it cannot).
    Proxy(proxy::ProxyArgs),
    /// Steady load through the Service and through the emulated slow load balancer.
    Load(load::LoadArgs),
    /// Stops the load running as PID 1 of this container (SIGTERM), which then prints its counts.
    Stop,
    /// Prints the table of results.json, writes the picture, fails when the opted-in
    /// namespace lost a request.
    Report {
        /// The results file `make e2e` writes.
        results: PathBuf,
        /// Where to write the SVG picture.
        #[arg(long)]
        svg: Option<PathBuf>,
    },
    /// Writes DIR/results.json from what scripts/e2e.sh collected into DIR and the run's
    /// settings (the one place results.json is put together).
    Results(results::AssembleArgs),
    /// Prints, as JSON, each terminated pod's hold and stop signal, read from the proxy
    /// containers' logs (`DIR/POD.log`, as `kubectl logs -f` wrote them) and the pods' deletion
    /// times (`--pods`: one JSON object per line, from `kubectl get pods --watch`).
    Holds {
        logs: PathBuf,
        #[arg(long)]
        pods: Option<PathBuf>,
    },
}

/// Durations as Go-style `500ms`, `5s`, `1m`, or whole seconds.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let bad = || format!("{value:?} is not a duration: use for example 5s, 500ms or 1m");
    let split = value
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" => number * 60.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| bad())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Report { results, svg } => report::run(&results, svg.as_deref()),
        Command::Stop => demo::stop_pid1(),
        Command::Holds { logs, pods } => holds::run(&logs, pods.as_deref()),
        Command::Results(args) => results::run(&args),
        command => runtime().and_then(|rt| {
            rt.block_on(async move {
                match command {
                    Command::App(args) => demo::app(args).await,
                    Command::Proxy(args) => proxy::proxy(args).await,
                    Command::Load(args) => load::run(args).await,
                    Command::Report { .. }
                    | Command::Stop
                    | Command::Holds { .. }
                    | Command::Results(_) => {
                        unreachable!("handled above")
                    }
                }
            })
        }),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("drain-e2e: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("0.5s"), Ok(Duration::from_millis(500)));
        let error = parse_duration("5 sec").unwrap_err();
        assert!(
            error.contains("\"5 sec\"") && error.contains("5s"),
            "{error}"
        );
        assert!(parse_duration("").is_err());
    }
}
