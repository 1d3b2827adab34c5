//! `drain-webhook`: parses the command line and hands over to the library.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use clap::Parser;
use drain_webhook::cli::{Cli, Command, LogFormat, PlanningArgs};
use drain_webhook::mutate::PodContext;
use drain_webhook::offline;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("drain-webhook: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
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
            Ok(())
        }
        Command::Inject(args) => {
            let input = read_input(&args.input.file)?;
            let output = with_context(&args.input.planning, |ctx| offline::inject(&input, ctx))?;
            for warning in &output.warnings {
                eprintln!("warning: {warning}");
            }
            print!("{output}");
            Ok(())
        }
        Command::Explain(args) => {
            let input = read_input(&args.input.file)?;
            let output = with_context(&args.input.planning, |ctx| {
                offline::explain(&input, ctx, args.output)
            })?;
            print!("{output}");
            Ok(())
        }
    }
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
