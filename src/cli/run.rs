//! Running a parsed command line: one function per subcommand, with the runtime each needs;
//! `main.rs` only parses and reports.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

use super::{Cli, Command, LogFormat, PlanningArgs};
use crate::mutate::PodContext;
use crate::offline::{self, OutputFormat};

/// Runs `cli`'s subcommand; the exit code on success, the error to print otherwise.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            init_logging(args.log_format, &args.log_level)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let args = *args;
            let settings = args.planning.settings()?;
            let served = runtime.block_on(crate::server::serve::run(
                settings,
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
            let output = with_context(
                &args.input.planning,
                args.input.image_volume_nodes.then_some(true),
                |ctx| offline::inject(&input, ctx),
            )?;
            for warning in &output.warnings {
                eprintln!("warning: {warning}");
            }
            print!("{output}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain(args) => {
            let output = match &args.file {
                Some(file) => {
                    let input = read_input(file)?;
                    with_context(
                        &args.planning,
                        args.image_volume_nodes.then_some(true),
                        |ctx| offline::explain(&input, ctx, args.output),
                    )?
                }
                None => explain_live(&args)?,
            };
            print!("{output}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Profiles(args) => {
            let settings = args.planning.settings()?;
            let output = match args.output {
                OutputFormat::Text => settings.profiles.render_text(settings.profile),
                OutputFormat::Json => settings.profiles.render_json(settings.profile),
                format => {
                    let json = settings.profiles.render_json(settings.profile);
                    let value: serde_json::Value =
                        serde_json::from_str(&json).context("cannot read the profiles back")?;
                    structured(format, &value)?
                }
            };
            print!("{output}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(args) => check(&args),
        Command::Audit(args) => {
            use std::io::IsTerminal;
            let rows = match &args.file {
                Some(file) => {
                    let input = read_input(file)?;
                    let options = crate::audit::AuditOptions {
                        namespace_opted_in: args.namespace_opted_in,
                        webhook_namespace: false,
                    };
                    with_context(&args.planning, None, |ctx| {
                        crate::audit::audit(&input, ctx, options)
                    })?
                }
                None => audit_live(&args)?,
            };
            // Colour only for a person at a terminal, and never under NO_COLOR (no-color.org).
            let colour = std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            let output = crate::audit::render(&rows, args.output, colour)
                .map_err(|err| anyhow::anyhow!("{err}"))?;
            print!("{output}");
            match args.fail_on {
                Some(fail_on) if crate::audit::fails(&rows, fail_on) => Ok(ExitCode::from(2)),
                _ => Ok(ExitCode::SUCCESS),
            }
        }
    }
}

/// `check`: exit 0 when every step passed, 1 when one failed, 2 when it cannot run (no
/// kubeconfig, API server unreachable); progress under `--wait` goes to stderr.
fn check(args: &crate::cli::CheckArgs) -> anyhow::Result<ExitCode> {
    use crate::check;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        let client = match args.client.client().await {
            Ok(client) => client,
            Err(err) => return Err(err),
        };
        let mut last_reason = String::new();
        let report = check::check(&client, &args.options(), |attempt| {
            // One line per new reason, not one per attempt.
            if let Some(failed) = attempt.first_failure() {
                let reason = format!("{}: {}", failed.step.name, failed.detail);
                if reason != last_reason {
                    eprintln!("check: waiting ({reason})");
                    last_reason = reason;
                }
            }
        })
        .await;
        Ok(report)
    });
    let report = match report {
        Ok(report) => report,
        Err(err) => {
            eprintln!("drain-webhook: {err}");
            return Ok(ExitCode::from(check::EXIT_UNUSABLE));
        }
    };
    let output = match args.output {
        OutputFormat::Text => check::render_text(&report),
        format => structured(format, &report)?,
    };
    print!("{output}");
    Ok(ExitCode::from(report.exit_code()))
}

/// Reads `namespace` (or all) from the cluster of `client_args`, with the version to plan for
/// (the flag wins over what the server reports, as for serve).
fn read_live(
    client_args: &crate::cli::ClientArgs,
    planning: &PlanningArgs,
    namespace: Option<&str>,
) -> anyhow::Result<(crate::audit::Cluster, Option<crate::settings::KubeVersion>)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = client_args.client().await.context(
            "cannot reach a cluster from the kubeconfig (set KUBECONFIG or --kubeconfig, or use -f FILE)",
        )?;
        let cluster = crate::audit::read_cluster(&client, namespace)
            .await
            .context("cannot read the cluster")?;
        for denied in &cluster.denied {
            eprintln!("warning: {denied}");
        }
        let version = match planning.kube_version() {
            Some(version) => Some(version),
            None => crate::cluster::server_version(&client).await,
        };
        Ok((cluster, version))
    })
}

/// `audit -n NS` / `-A`.
fn audit_live(args: &crate::cli::AuditArgs) -> anyhow::Result<Vec<crate::audit::Row>> {
    let (mut cluster, version) =
        read_live(&args.client, &args.planning, args.namespace.as_deref())?;
    // The webhook's own namespace is named as never mutated, not advised to opt in.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let observed = runtime
        .block_on(async {
            let client = args.client.client().await?;
            crate::audit::read_webhook_namespace(
                &client,
                &args.webhook_configuration_name,
                &mut cluster,
            )
            .await
            .context("cannot read the webhook configuration")?;
            // What the drain observer saw, through the service proxy; without it, one line
            // says why and the audit goes on.
            anyhow::Ok(
                crate::audit::read_observed(
                    &client,
                    cluster.webhook_service.as_ref(),
                    &args.webhook_configuration_name,
                )
                .await,
            )
        })
        .map_err(|err| anyhow::anyhow!("{err:#}"))?;
    for denied in &cluster.denied {
        if denied.contains("MutatingWebhookConfiguration") {
            eprintln!("warning: {denied}");
        }
    }
    let mut rows = crate::audit::audit_cluster(cluster, &args.planning.settings()?, version)
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    match observed {
        Ok(workloads) => crate::audit::observed::attach(&mut rows, &workloads),
        Err(unavailable) => eprintln!("audit: {unavailable}"),
    }
    Ok(rows)
}

/// `explain KIND/NAME [-n NS]`, `explain -n NS --all`, `explain -A`.
fn explain_live(args: &crate::cli::ExplainArgs) -> anyhow::Result<String> {
    let target = match &args.object {
        Some(object) => {
            let (kind, name) = object
                .split_once('/')
                .filter(|(_, n)| !n.is_empty())
                .ok_or_else(|| {
                    anyhow::anyhow!("{object:?} is not KIND/NAME; use for example deploy/web")
                })?;
            let kind = crate::audit::kind_alias(kind).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown kind {kind:?}; use one of deploy, sts, ds, rs, job, cronjob, pod"
                )
            })?;
            Some((kind, name.to_owned()))
        }
        None => None,
    };
    let namespace = if args.all_namespaces {
        None
    } else {
        Some(args.namespace.as_deref().unwrap_or("default"))
    };
    let (cluster, version) = read_live(&args.client, &args.planning, namespace)?;
    crate::audit::explain_cluster(
        &cluster,
        &args.planning.settings()?,
        version,
        target.as_ref().map(|(k, n)| (*k, n.as_str())),
        args.output,
    )
    .map_err(|err| anyhow::anyhow!("{err}"))
}

/// `image_volume_nodes`: `--image-volume-nodes`, else unknown (no image volume from auto).
fn with_context<T, E: std::fmt::Display>(
    planning: &PlanningArgs,
    image_volume_nodes: Option<bool>,
    f: impl FnOnce(&PodContext<'_>) -> Result<T, E>,
) -> anyhow::Result<T> {
    let settings = planning.settings()?;
    let ctx = PodContext {
        settings: &settings,
        namespace_annotations: None,
        kube_version: planning.kube_version(),
        image_volume_nodes,
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

/// `value` as `format` asks (JSON or YAML), for a command whose text output is its own.
fn structured<T: serde::Serialize>(format: OutputFormat, value: &T) -> anyhow::Result<String> {
    format
        .structured(value)
        .unwrap_or_else(|| Err("no structured form of the text output".into()))
        .map_err(|err| anyhow::anyhow!("cannot write the report as {format:?}: {err}"))
}
