//! `drain-webhook`: parses the command line and hands over to the library.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use drain_webhook::cli::{Cli, Command, LogFormat, PlanningArgs};
use drain_webhook::mutate::PodContext;
use drain_webhook::offline;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("drain-webhook: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            init_logging(args.log_format, &args.log_level)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let args = *args;
            let served = runtime.block_on(drain_webhook::server::serve::run(
                args.planning.settings(),
                args.planning.kube_version(),
                args.server,
            ));
            // After an abort, tasks still serving are not waited for (a graceful run has
            // none left).
            runtime.shutdown_background();
            served?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Inject(args) => {
            let input = read_input(&args.input.file)?;
            let output = with_context(&args.input.planning, |ctx| offline::inject(&input, ctx))?;
            for warning in &output.warnings {
                eprintln!("warning: {warning}");
            }
            print!("{output}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain(args) => {
            let input = read_input(&args.input.file)?;
            let output = with_context(&args.input.planning, |ctx| {
                offline::explain(&input, ctx, args.output)
            })?;
            print!("{output}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(args) => {
            use std::io::IsTerminal;
            let rows = match &args.file {
                Some(file) => {
                    let input = read_input(file)?;
                    let options = drain_webhook::audit::AuditOptions {
                        namespace_opted_in: args.namespace_opted_in,
                    };
                    with_context(&args.planning, |ctx| {
                        drain_webhook::audit::audit(&input, ctx, options)
                    })?
                }
                None => audit_live(&args)?,
            };
            // Colour only for a person at a terminal, and never under NO_COLOR (no-color.org).
            let colour = std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            let output = drain_webhook::audit::render(&rows, args.output, colour)
                .map_err(|err| anyhow::anyhow!("{err}"))?;
            print!("{output}");
            match args.fail_on {
                Some(fail_on) if drain_webhook::audit::fails(&rows, fail_on) => {
                    Ok(ExitCode::from(2))
                }
                _ => Ok(ExitCode::SUCCESS),
            }
        }
    }
}

/// `audit -n NS` / `-A`: reads the cluster in the current kubeconfig.
fn audit_live(
    args: &drain_webhook::cli::AuditArgs,
) -> anyhow::Result<Vec<drain_webhook::audit::Row>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = kube::Client::try_default().await.context(
            "cannot reach a cluster from the current kubeconfig (set KUBECONFIG, or use -f FILE)",
        )?;
        let cluster = drain_webhook::audit::read_cluster(&client, args.namespace.as_deref())
            .await
            .context("cannot read the cluster")?;
        for denied in &cluster.denied {
            eprintln!("warning: {denied}");
        }
        // The flag wins over what the server reports, as for serve.
        let version = match args.planning.kube_version() {
            Some(version) => Some(version),
            None => drain_webhook::cluster::server_version(&client).await,
        };
        drain_webhook::audit::audit_cluster(cluster, &args.planning.settings(), version)
            .map_err(|err| anyhow::anyhow!("{err}"))
    })
}

fn with_context<T, E: std::fmt::Display>(
    planning: &PlanningArgs,
    f: impl FnOnce(&PodContext<'_>) -> Result<T, E>,
) -> anyhow::Result<T> {
    let settings = planning.settings();
    let ctx = PodContext {
        settings: &settings,
        namespace_annotations: None,
        kube_version: planning.kube_version(),
    };
    f(&ctx).map_err(|err| anyhow::anyhow!("{err}"))
}

fn read_input(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut input = String::new();
        std::io::stdin()
            .read_to_string(&mut input)
            .context("cannot read standard input")?;
        return Ok(input);
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn init_logging(format: LogFormat, level: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(level)
        .with_context(|| format!("invalid --log-level {level:?} (for example info)"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}
