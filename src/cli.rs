//! Command line of `drain-webhook`: `serve`, `inject` and `explain`, all sharing one group
//! of planning flags. Every flag can also be set through its `DRAIN_...` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::offline::ExplainFormat;

use crate::duration::parse_seconds;
use crate::settings::{DEFAULT_PROXY_IMAGES, HelperSettings, HookMode, KubeVersion, Settings};

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
}

/// Flags that decide the plan; shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct PlanningArgs {
    /// D: how long new traffic may still arrive after the pod is deleted.
    #[arg(long, env = "DRAIN_DELAY", default_value = "10s", value_parser = duration_flag, value_name = "DURATION")]
    pub delay: u32,
    /// S: how long a front proxy drains before the app behind it gets SIGTERM.
    #[arg(long, env = "DRAIN_STAGGER", default_value = "5s", value_parser = duration_flag, value_name = "DURATION")]
    pub stagger: u32,
    /// B: time every container keeps after its own SIGTERM when the pod sets no grace period.
    #[arg(long, env = "DRAIN_SHUTDOWN_BUDGET", default_value = "30s", value_parser = duration_flag, value_name = "DURATION")]
    pub shutdown_budget: u32,
    /// Grace periods above this are refused.
    #[arg(long, env = "DRAIN_MAX_GRACE", default_value = "3600s", value_parser = duration_flag, value_name = "DURATION")]
    pub max_grace: u32,
    /// Image names that mark a container as a front proxy (comma-separated).
    #[arg(
        long,
        env = "DRAIN_PROXY_IMAGES",
        value_delimiter = ',',
        default_values_t = DEFAULT_PROXY_IMAGES.map(String::from),
        value_name = "NAMES"
    )]
    pub proxy_images: Vec<String>,
    /// Which preStop mechanism to use: auto, sleep or helper.
    #[arg(long, env = "DRAIN_HOOK_MODE", default_value = "auto", value_parser = hook_mode_flag, value_name = "MODE")]
    pub hook_mode: HookMode,
    /// Image that carries the drain-helper binary.
    #[arg(long, env = "DRAIN_HELPER_IMAGE", default_value_t = HelperSettings::default().image)]
    pub helper_image: String,
    /// imagePullPolicy of the helper's init container.
    #[arg(long, env = "DRAIN_HELPER_IMAGE_PULL_POLICY", default_value_t = HelperSettings::default().image_pull_policy)]
    pub helper_image_pull_policy: String,
    #[arg(long, env = "DRAIN_HELPER_CPU_REQUEST", default_value_t = HelperSettings::default().cpu_request)]
    pub helper_cpu_request: String,
    #[arg(long, env = "DRAIN_HELPER_MEMORY_REQUEST", default_value_t = HelperSettings::default().memory_request)]
    pub helper_memory_request: String,
    #[arg(long, env = "DRAIN_HELPER_CPU_LIMIT", default_value_t = HelperSettings::default().cpu_limit)]
    pub helper_cpu_limit: String,
    #[arg(long, env = "DRAIN_HELPER_MEMORY_LIMIT", default_value_t = HelperSettings::default().memory_limit)]
    pub helper_memory_limit: String,
    /// Numeric, non-root user of the helper's init container.
    #[arg(long, env = "DRAIN_HELPER_RUN_AS_USER", default_value_t = HelperSettings::default().run_as_user, value_parser = run_as_user_flag)]
    pub helper_run_as_user: i64,
    /// Kubernetes version (e.g. 1.34). Empty: ask the API server (serve) or unknown (offline).
    #[arg(long, env = "DRAIN_KUBE_VERSION", value_parser = kube_version_flag, value_name = "MAJOR.MINOR")]
    pub kube_version: Option<OptionalKubeVersion>,
}

/// `--kube-version`, where an empty value (e.g. an empty environment variable) means "unset".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalKubeVersion(pub Option<KubeVersion>);

impl PlanningArgs {
    /// The global settings these flags describe. Every value was validated while parsing.
    pub fn settings(&self) -> Settings {
        Settings {
            delay: self.delay,
            stagger: self.stagger,
            shutdown_budget: self.shutdown_budget,
            max_grace: self.max_grace,
            proxy_images: self
                .proxy_images
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            hook_mode: self.hook_mode,
            helper: HelperSettings {
                image: self.helper_image.clone(),
                image_pull_policy: self.helper_image_pull_policy.clone(),
                cpu_request: self.helper_cpu_request.clone(),
                memory_request: self.helper_memory_request.clone(),
                cpu_limit: self.helper_cpu_limit.clone(),
                memory_limit: self.helper_memory_limit.clone(),
                run_as_user: self.helper_run_as_user,
            },
        }
    }

    /// The version given on the command line, if any.
    pub fn kube_version(&self) -> Option<KubeVersion> {
        self.kube_version.and_then(|v| v.0)
    }
}

/// Where the serving certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CertMode {
    /// `--tls-cert` and `--tls-key`, reloaded when their contents change.
    Files,
    /// A certificate for localhost generated at start (local runs and tests).
    SelfSigned,
    /// A CA and serving certificate kept in a Secret, caBundle patched into the webhook configuration.
    SelfManaged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Flags of `drain-webhook serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub planning: PlanningArgs,
    /// Address of the HTTPS admission endpoint (`POST /mutate`).
    #[arg(long, env = "DRAIN_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Address of the plain HTTP admin endpoints (`/livez`, `/readyz`, `/metrics`).
    #[arg(long, env = "DRAIN_ADMIN_LISTEN", default_value = "0.0.0.0:8080")]
    pub admin_listen: SocketAddr,
    /// PEM certificate chain (leaf first); reloaded when its contents change.
    #[arg(long, env = "DRAIN_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
    #[arg(long, env = "DRAIN_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// files, self-signed or self-managed. Default: files when --tls-cert is given, else self-signed.
    #[arg(long, env = "DRAIN_CERT_MODE", value_enum)]
    pub cert_mode: Option<CertMode>,
    /// How often the certificate files are re-read.
    #[arg(long, env = "DRAIN_TLS_RELOAD_INTERVAL", default_value = "2s", value_parser = duration_flag, value_name = "DURATION")]
    pub tls_reload_interval: u32,
    /// Secret holding the CA and serving certificate (cert-mode self-managed).
    #[arg(
        long,
        env = "DRAIN_TLS_SECRET_NAME",
        default_value = "drain-webhook-tls"
    )]
    pub tls_secret_name: String,
    /// MutatingWebhookConfiguration whose caBundle is kept current (cert-mode self-managed).
    #[arg(
        long,
        env = "DRAIN_WEBHOOK_CONFIGURATION_NAME",
        default_value = "drain-webhook"
    )]
    pub webhook_configuration_name: String,
    /// Service in front of the webhook (cert-mode self-managed: `<service>.<namespace>.svc`).
    #[arg(long, env = "DRAIN_SERVICE_NAME", default_value = "drain-webhook")]
    pub service_name: String,
    /// The webhook's own namespace: its pods are always allowed untouched.
    #[arg(long, env = "DRAIN_NAMESPACE")]
    pub namespace: Option<String>,
    /// After SIGTERM, how long to keep serving while endpoints are removed.
    #[arg(long, env = "DRAIN_SHUTDOWN_DELAY", default_value = "5s", value_parser = duration_flag, value_name = "DURATION")]
    pub shutdown_delay: u32,
    /// Largest accepted AdmissionReview body, in bytes.
    #[arg(long, env = "DRAIN_MAX_BODY_BYTES", default_value_t = crate::admission::DEFAULT_BODY_LIMIT)]
    pub max_body_bytes: usize,
    /// Open HTTPS connections at most; more wait in the listen backlog until one closes.
    #[arg(long, env = "DRAIN_MAX_CONNECTIONS", default_value_t = crate::server::DEFAULT_MAX_CONNECTIONS, value_parser = max_connections_flag, value_name = "N")]
    pub max_connections: usize,
    #[arg(long, env = "DRAIN_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log filter, e.g. `info` or `drain_webhook=debug,info`.
    #[arg(long, env = "DRAIN_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Do not contact the API server: run on flags alone.
    #[arg(long, env = "DRAIN_NO_CLUSTER")]
    pub no_cluster: bool,
}

impl ServeArgs {
    /// The certificate mode in force, with its default applied.
    pub fn effective_cert_mode(&self) -> CertMode {
        match (self.cert_mode, &self.tls_cert) {
            (Some(mode), _) => mode,
            (None, Some(_)) => CertMode::Files,
            (None, None) => CertMode::SelfSigned,
        }
    }

    pub fn shutdown_delay(&self) -> Duration {
        Duration::from_secs(u64::from(self.shutdown_delay))
    }
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
}

#[derive(Debug, Clone, Args)]
pub struct InjectArgs {
    #[command(flatten)]
    pub input: OfflineArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub input: OfflineArgs,
    /// text (a timeline picture) or json.
    #[arg(
        short = 'o',
        long = "output",
        env = "DRAIN_OUTPUT",
        value_enum,
        default_value = "text"
    )]
    pub output: ExplainFormat,
}

fn duration_flag(value: &str) -> Result<u32, String> {
    parse_seconds(value).map_err(|err| format!("{err} (for example 10s, 90 or 1m30s)"))
}

fn hook_mode_flag(value: &str) -> Result<HookMode, String> {
    value
        .parse()
        .map_err(|err: &str| format!("{err} (for example auto)"))
}

fn max_connections_flag(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a positive number of connections (for example 1024)".into()),
    }
}

fn run_as_user_flag(value: &str) -> Result<i64, String> {
    match value.trim().parse::<i64>() {
        Ok(uid) if uid > 0 => Ok(uid),
        _ => Err("expected a numeric, non-root user id (for example 65532)".into()),
    }
}

fn kube_version_flag(value: &str) -> Result<OptionalKubeVersion, String> {
    if value.trim().is_empty() {
        return Ok(OptionalKubeVersion(None));
    }
    value
        .parse()
        .map(|v| OptionalKubeVersion(Some(v)))
        .map_err(|err: &str| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

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
        assert_eq!(serve.planning.settings(), Settings::default());
        assert_eq!(serve.planning.kube_version(), None);
        assert_eq!(serve.listen, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(serve.admin_listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(serve.effective_cert_mode(), CertMode::SelfSigned);
        assert_eq!(serve.shutdown_delay(), Duration::from_secs(5));
        assert_eq!(serve.max_connections, 1024);
        assert!(parse(&["serve", "--max-connections", "0"]).is_err());
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
        let settings = explain.input.planning.settings();
        assert_eq!(settings.delay, 90);
        assert_eq!(settings.stagger, 2);
        assert_eq!(settings.proxy_images, vec!["nginx", "envoy"]);
        assert_eq!(settings.hook_mode, HookMode::Helper);
        assert_eq!(settings.helper.run_as_user, 1000);
        assert_eq!(
            explain.input.planning.kube_version(),
            Some(KubeVersion {
                major: 1,
                minor: 29
            })
        );
        assert_eq!(explain.output, ExplainFormat::Json);
        assert_eq!(explain.input.file, PathBuf::from("-"));
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
    }

    #[test]
    fn cert_mode_defaults_to_files_when_a_certificate_is_given() {
        let Command::Serve(serve) = parse(&["serve", "--tls-cert", "a", "--tls-key", "b"])
            .unwrap()
            .command
        else {
            panic!("expected serve");
        };
        assert_eq!(serve.effective_cert_mode(), CertMode::Files);
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
