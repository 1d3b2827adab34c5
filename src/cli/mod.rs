//! Command line of `drain-webhook`: `serve`, `inject`, `explain`, `audit`, `profiles` and
//! `check`; the planning commands share one group of flags. Every flag can also be set through its `DRAIN_...` environment variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod live;
mod planning;
mod run;
pub use live::{CheckArgs, ClientArgs, ClientError};
pub use planning::{OptionalKubeVersion, PlanningArgs, SettingsError};
pub use run::run;

use crate::offline::OutputFormat;
use crate::server::args::{DEFAULT_WEBHOOK_CONFIGURATION_NAME, ServerArgs};

/// Kubernetes mutating admission webhook that makes pod shutdown lose no requests.
#[derive(Debug, Parser)]
#[command(name = "drain-webhook", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the admission webhook (HTTPS) and the admin endpoints (HTTP).
    Serve(Box<ServeArgs>),
    /// Mutate Pods and pod templates in YAML or JSON offline; print the result as YAML.
    Inject(InjectArgs),
    /// Show the shutdown timeline planned for each container.
    Explain(ExplainArgs),
    /// One row per workload: protected or not, drift, risks, and what inject would change.
    Audit(AuditArgs),
    /// List the traffic-path profiles (built-in and --profiles-file) and check the file: run it
    /// on a profiles file before it goes into the chart.
    Profiles(ProfilesArgs),
    /// Check the installation in the cluster of the kubeconfig, end to end: one line per step,
    /// with the fix. Exit 0: every step passed; 1: a step failed; 2: cannot run.
    Check(CheckArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Flags of `drain-webhook serve`: planning, server (owned by [`crate::server::args`]) and
/// logging.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub planning: PlanningArgs,
    #[command(flatten)]
    pub server: ServerArgs,
    #[arg(long, env = "DRAIN_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log filter, e.g. `info` or `drain_webhook=debug,info`.
    #[arg(long, env = "DRAIN_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

/// What `inject` and `explain` read, and the planning settings they apply.
#[derive(Debug, Clone, Args)]
pub struct OfflineArgs {
    #[command(flatten)]
    pub planning: PlanningArgs,
    /// Input file, or `-` for standard input.
    #[arg(
        short = 'f',
        long = "filename",
        env = "DRAIN_INPUT",
        value_name = "FILE|-"
    )]
    pub file: PathBuf,
    /// Plan as if every node mounts image volumes (kubelet 1.35+ on containerd 2.1+ or
    /// CRI-O 1.31+): with --kube-version 1.35+, --helper-delivery auto then gives an image
    /// volume. Without it, offline plans assume the nodes may not (what the webhook assumes
    /// before its node watch has listed them).
    #[arg(long)]
    pub image_volume_nodes: bool,
}

#[derive(Debug, Clone, Args)]
pub struct InjectArgs {
    #[command(flatten)]
    pub input: OfflineArgs,
}

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("explained").required(true).args(["file", "object", "all", "all_namespaces"])))]
pub struct ExplainArgs {
    #[command(flatten)]
    pub planning: PlanningArgs,
    #[command(flatten)]
    pub client: ClientArgs,
    /// Input file, or `-` for standard input (offline).
    #[arg(
        short = 'f',
        long = "filename",
        env = "DRAIN_INPUT",
        value_name = "FILE|-",
        conflicts_with_all = ["object", "all", "all_namespaces"]
    )]
    pub file: Option<PathBuf>,
    /// Plan as if every node mounts image volumes (kubelet 1.35+ on containerd 2.1+ or
    /// CRI-O 1.31+): with --kube-version 1.35+, --helper-delivery auto then gives an image
    /// volume. Without it, offline plans assume the nodes may not (what the webhook assumes
    /// before its node watch has listed them).
    #[arg(long, requires = "file")]
    pub image_volume_nodes: bool,

    /// A workload of the cluster in the current kubeconfig, e.g. deploy/web.
    #[arg(value_name = "KIND/NAME", conflicts_with_all = ["all", "all_namespaces"])]
    pub object: Option<String>,
    /// Namespace of KIND/NAME or --all (default: default).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Every workload of the namespace.
    #[arg(long)]
    pub all: bool,
    /// Every workload of every namespace.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// text (a timeline picture) or json.
    #[arg(
        short = 'o',
        long = "output",
        env = "DRAIN_OUTPUT",
        value_enum,
        default_value = "text"
    )]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Args)]
pub struct ProfilesArgs {
    #[command(flatten)]
    pub planning: PlanningArgs,
    /// text (a table) or json.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["file", "namespace", "all_namespaces"])))]
pub struct AuditArgs {
    #[command(flatten)]
    pub planning: PlanningArgs,
    #[command(flatten)]
    pub client: ClientArgs,
    /// Input file, or `-` for standard input (offline).
    #[arg(short = 'f', long = "filename", value_name = "FILE|-")]
    pub file: Option<PathBuf>,
    /// Audit this namespace of the cluster in the current kubeconfig.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Audit every namespace of the cluster in the current kubeconfig.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// text (a table), json or yaml.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    pub output: crate::offline::OutputFormat,
    /// Exit with status 2 when any row has a risk, or is not protected (or drifted).
    #[arg(long, value_enum, value_name = "risk|unprotected")]
    pub fail_on: Option<crate::audit::FailOn>,
    /// Treat every namespace as opted in (its `drain.io/inject=enabled` label is not in the
    /// input); without it only a `drain.io/inject` annotation on the object opts in.
    #[arg(long)]
    pub namespace_opted_in: bool,
    /// Live: the MutatingWebhookConfiguration whose Service's namespace is the webhook's own
    /// (reported as webhook-namespace: never mutated).
    #[arg(long, env = "DRAIN_WEBHOOK_CONFIGURATION_NAME", default_value = DEFAULT_WEBHOOK_CONFIGURATION_NAME)]
    pub webhook_configuration_name: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::args::CertMode;
    use crate::settings::{HookMode, KubeVersion, Settings};
    use clap::CommandFactory;
    use std::time::Duration;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("drain-webhook").chain(args.iter().copied()))
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_match_the_settings_defaults() {
        let Command::Serve(serve) = parse(&["serve"]).unwrap().command else {
            panic!("expected serve");
        };
        assert_eq!(serve.planning.settings().unwrap(), Settings::default());
        assert_eq!(serve.planning.kube_version(), None);
        assert_eq!(serve.server.listen, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(serve.server.admin_listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(serve.server.effective_cert_mode(), CertMode::SelfSigned);
        assert_eq!(serve.server.shutdown_delay(), Duration::from_secs(5));
        assert_eq!(serve.server.max_connections, 1024);
        assert!(parse(&["serve", "--max-connections", "0"]).is_err());
    }

    #[test]
    fn profile_flag_takes_known_names_and_lists_them_otherwise() {
        let Command::Serve(serve) = parse(&["serve", "--profile", "aws-nlb"]).unwrap().command
        else {
            panic!("expected serve");
        };
        assert_eq!(
            serve.planning.settings().unwrap().profile.map(|p| p.name),
            Some("aws-nlb")
        );
        let Command::Serve(serve) = parse(&["serve", "--profile", "aws"]).unwrap().command else {
            panic!("expected serve");
        };
        let err = serve.planning.settings().unwrap_err().to_string();
        assert!(
            err.contains("--profile") && err.contains("aws-alb, aws-nlb"),
            "{err}"
        );
        let Command::Serve(serve) = parse(&["serve", "--profile", ""]).unwrap().command else {
            panic!("expected serve");
        };
        assert_eq!(serve.planning.settings().unwrap().profile, None);
    }

    fn serve_settings(args: &[&str]) -> Result<Settings, SettingsError> {
        let args: Vec<&str> = std::iter::once("serve")
            .chain(args.iter().copied())
            .collect();
        let Command::Serve(serve) = parse(&args).unwrap().command else {
            panic!("expected serve");
        };
        serve.planning.settings()
    }

    #[test]
    fn profiles_file_is_read_at_startup_and_its_mistakes_stop_the_command() {
        let dir = std::env::temp_dir().join(format!("drain-profiles-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("profiles.json");
        let path = file.to_str().unwrap();
        std::fs::write(
            &file,
            r#"{"profiles": [{"name": "corp-f5", "delayFloor": 45, "note": "F5, measured"}]}"#,
        )
        .unwrap();
        // A file profile can be the default, and is known to drain.io/profile.
        let settings = serve_settings(&["--profiles-file", path, "--profile", "corp-f5"]).unwrap();
        assert_eq!(settings.profile.map(|p| p.delay_floor), Some(45));
        assert!(settings.profiles.find("corp-f5").is_some());
        assert!(settings.profiles.find("aws-nlb").is_some());
        // Without the file the name is unknown, and the error lists what is known.
        let err = serve_settings(&["--profile", "corp-f5"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--profile \"corp-f5\": no such profile") && err.contains("aws-nlb"),
            "{err}"
        );
        // The adaptive hold's M + S + B above --max-grace would deny every proxy pod.
        let err = serve_settings(&["--max-grace", "60s"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--max-delay 60s"), "{err}");
        // A floor above --max-grace would deny every pod: refused at startup.
        let err = serve_settings(&["--profiles-file", path, "--max-grace", "30s"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"corp-f5\" (--profiles-file)") && err.contains("--max-grace 30s"),
            "{err}"
        );
        // So is a built-in one chosen as the default, but not a built-in nobody chose.
        assert!(serve_settings(&["--max-grace", "60s", "--max-delay", "20s"]).is_ok());
        let err = serve_settings(&["--max-grace", "60s", "--profile", "aws-nlb"]).unwrap_err();
        assert!(err.to_string().contains("(--profile)"), "{err}");
        // A file that is missing or wrong names itself.
        let missing = dir.join("missing.json");
        let err = serve_settings(&["--profiles-file", missing.to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cannot read --profiles-file") && err.contains("missing.json"),
            "{err}"
        );
        std::fs::write(
            &file,
            r#"{"profiles": [{"name": "x", "delay": 4, "note": "n"}]}"#,
        )
        .unwrap();
        let err = serve_settings(&["--profiles-file", path])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(path) && err.contains("unknown field `delay`"),
            "{err}"
        );
        // An empty value (the chart's default) means no file.
        assert_eq!(
            serve_settings(&["--profiles-file", ""]).unwrap(),
            Settings::default()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn planning_flags_turn_into_settings() {
        let Command::Explain(explain) = parse(&[
            "explain",
            "-f",
            "-",
            "-o",
            "json",
            "--delay",
            "1m30s",
            "--stagger",
            "2",
            "--proxy-images",
            "nginx, envoy",
            "--hook-mode",
            "helper",
            "--kube-version",
            "1.29",
            "--helper-run-as-user",
            "1000",
        ])
        .unwrap()
        .command
        else {
            panic!("expected explain");
        };
        let settings = explain.planning.settings().unwrap();
        assert_eq!(settings.delay, 90);
        assert_eq!(settings.stagger, 2);
        assert_eq!(settings.proxy_images, vec!["nginx", "envoy"]);
        assert_eq!(settings.hook_mode, HookMode::Helper);
        assert_eq!(settings.helper.run_as_user, 1000);
        assert_eq!(
            explain.planning.kube_version(),
            Some(KubeVersion {
                major: 1,
                minor: 29
            })
        );
        assert_eq!(explain.output, OutputFormat::Json);
        assert_eq!(explain.file, Some(PathBuf::from("-")));
    }

    #[test]
    fn bad_values_name_the_flag_and_an_example() {
        let err = parse(&["inject", "-f", "x", "--delay", "abc"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--delay"), "{err}");
        assert!(err.contains("10s"), "{err}");
        let err = parse(&["serve", "--kube-version", "one"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--kube-version"), "{err}");
        assert!(err.contains("1.34"), "{err}");
        let err = parse(&["serve", "--helper-run-as-user", "0"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("65532"), "{err}");
        // The installer's resources go into every pod: a quantity the API server refuses, or a
        // request above its limit, would have every such pod rejected.
        for bad in ["10x", "-5m", "0", ""] {
            let err = parse(&["serve", &format!("--helper-cpu-limit={bad}")])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("--helper-cpu-limit") && err.contains("20m"),
                "{err}"
            );
        }
        let err = serve_settings(&["--helper-memory-request", "64Mi"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "--helper-memory-request 64Mi is above --helper-memory-limit 32Mi: the API server rejects such a container, so every pod that gets the installer would be rejected; lower the request or raise the limit"
        );
        let settings =
            serve_settings(&["--helper-cpu-request", "0.02", "--helper-cpu-limit", "20m"]).unwrap();
        assert_eq!(settings.helper.cpu_request, "0.02");
    }

    #[test]
    fn cert_mode_defaults_to_files_when_a_certificate_is_given() {
        let Command::Serve(serve) = parse(&["serve", "--tls-cert", "a", "--tls-key", "b"])
            .unwrap()
            .command
        else {
            panic!("expected serve");
        };
        assert_eq!(serve.server.effective_cert_mode(), CertMode::Files);
        assert!(parse(&["serve", "--cert-mode", "self-managed"]).is_ok());
    }

    #[test]
    fn empty_kube_version_means_unset() {
        let Command::Serve(serve) = parse(&["serve", "--kube-version", ""]).unwrap().command else {
            panic!("expected serve");
        };
        assert_eq!(serve.planning.kube_version(), None);
    }
}
