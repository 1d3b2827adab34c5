//! Command line of `drain-webhook`: `serve`, `inject`, `explain`, `audit`, `profiles` and
//! `check`; the planning commands share one group of flags. Every flag can also be set through its `DRAIN_...` environment variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod live;
pub use live::{CheckArgs, ClientArgs, ClientError};

use crate::offline::ExplainFormat;
use crate::profiles::{Catalogue, Origin, ProfilesFileError};
use crate::server::args::{
    DEFAULT_WEBHOOK_CONFIGURATION_NAME, ServerArgs, duration_flag, quiet_flag,
};
use crate::settings::{
    DEFAULT_PROXY_IMAGES, HelperDelivery, HelperSettings, HookMode, KubeVersion, Settings,
};

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
    /// Q: the adaptive hold (a front proxy, the app behind it, a container with drain-helper)
    /// ends once no new connection and no request on an open one arrived in the pod for this long, never before D.
    #[arg(long, env = "DRAIN_QUIET", default_value = "3s", value_parser = quiet_flag, value_name = "DURATION")]
    pub quiet: u32,
    /// M: the adaptive hold ends at this time after deletion at the latest, with traffic still
    /// arriving; at or below D the hold is the fixed D.
    #[arg(long, env = "DRAIN_MAX_DELAY", default_value = "60s", value_parser = duration_flag, value_name = "DURATION")]
    pub max_delay: u32,
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
    /// Which preStop mechanism to use: auto, sleep, helper or native (opt-in: sleep plus
    /// lifecycle.stopSignal, needs the ContainerStopSignals gate).
    #[arg(long, env = "DRAIN_HOOK_MODE", default_value = "auto", value_parser = hook_mode_flag, value_name = "MODE")]
    pub hook_mode: HookMode,
    /// How drain-helper reaches pods: auto (an image volume from Kubernetes 1.35 where every
    /// node's runtime mounts them; else a first container that installs and sleeps for pods
    /// with restartPolicy Always, an init container for the others), init-container,
    /// first-container or image-volume (forced: whatever the nodes report).
    #[arg(long, env = "DRAIN_HELPER_DELIVERY", default_value = "auto", value_parser = helper_delivery_flag, value_name = "HOW")]
    pub helper_delivery: HelperDelivery,
    /// Image that carries the drain-helper binary.
    #[arg(long, env = "DRAIN_HELPER_IMAGE", default_value_t = HelperSettings::default().image)]
    pub helper_image: String,
    /// imagePullPolicy of the helper's installer container (or image volume).
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
    /// Numeric, non-root user of the helper's installer container.
    #[arg(long, env = "DRAIN_HELPER_RUN_AS_USER", default_value_t = HelperSettings::default().run_as_user, value_parser = run_as_user_flag)]
    pub helper_run_as_user: i64,
    /// Traffic-path profile of pods that name none in drain.io/profile (docs/profiles.md):
    /// its floor raises the delay. Empty: none.
    /// Checked against the built-ins and --profiles-file when the command starts.
    #[arg(long, env = "DRAIN_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// JSON file of profiles to add to the built-ins or put in their place
    /// (docs/profiles.md); read and checked once, at startup. Empty: none.
    #[arg(long, env = "DRAIN_PROFILES_FILE", value_name = "PATH")]
    pub profiles_file: Option<String>,
    /// Kubernetes version (e.g. 1.34). Empty: ask the API server (serve) or unknown (offline).
    #[arg(long, env = "DRAIN_KUBE_VERSION", value_parser = kube_version_flag, value_name = "MAJOR.MINOR")]
    pub kube_version: Option<OptionalKubeVersion>,
}

/// `--kube-version`, where an empty value (e.g. an empty environment variable) means "unset".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalKubeVersion(pub Option<KubeVersion>);

/// Planning flags that could only be checked once the profiles file was read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read --profiles-file {path}: {source}")]
    ReadProfiles {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Profiles(#[from] ProfilesFileError),
    #[error("--profile {name:?}: no such profile; the known ones are {known}")]
    UnknownProfile { name: String, known: String },
    #[error(
        "profile {name:?} ({origin}) needs a grace period of at least {need}s for its floors alone, above --max-grace {max}s: every pod using it would be denied; lower its floors or raise --max-grace"
    )]
    FloorsAboveMaximum {
        name: &'static str,
        origin: &'static str,
        need: u64,
        max: u32,
    },
    #[error(
        "--max-delay {max_delay}s plus --stagger {stagger}s plus --shutdown-budget {budget}s is {need}s, above --max-grace {max}s: every pod with a front proxy would be denied; lower --max-delay (for example {example}s) or raise --max-grace"
    )]
    HoldAboveMaximum {
        max_delay: u32,
        stagger: u32,
        budget: u32,
        need: u64,
        max: u32,
        example: u32,
    },
}

impl PlanningArgs {
    /// The global settings these flags describe. Flags were validated while parsing; the
    /// profiles file and `--profile` are checked here, so a bad one stops the command before
    /// it serves or plans anything.
    pub fn settings(&self) -> Result<Settings, SettingsError> {
        let profiles = match self.profiles_file.as_deref() {
            Some(path) if !path.trim().is_empty() => {
                let shown = path.trim().to_owned();
                let text = std::fs::read_to_string(&shown).map_err(|source| {
                    SettingsError::ReadProfiles {
                        path: shown.clone(),
                        source,
                    }
                })?;
                Catalogue::load(&text, &shown)?
            }
            _ => Catalogue::BUILTIN,
        };
        let profile = match self.profile.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(name) => {
                Some(
                    profiles
                        .find(name)
                        .ok_or_else(|| SettingsError::UnknownProfile {
                            name: name.to_owned(),
                            known: profiles.known_names(),
                        })?,
                )
            }
        };
        // A floor no pod can meet is an operator's mistake: say so now, not in every denial.
        let from_file = profiles
            .profiles()
            .iter()
            .filter(|p| p.origin() != Origin::BuiltIn);
        for (p, origin) in from_file
            .map(|p| (p, "--profiles-file"))
            .chain(profile.map(|p| (p, "--profile")))
        {
            let need = u64::from(p.delay_floor) + u64::from(p.budget_floor.unwrap_or(0));
            if need > u64::from(self.max_grace) {
                return Err(SettingsError::FloorsAboveMaximum {
                    name: p.name,
                    origin,
                    need,
                    max: self.max_grace,
                });
            }
        }
        // The adaptive hold's worst case on the defaults, M + S + B, must fit the maximum.
        let need =
            u64::from(self.max_delay) + u64::from(self.stagger) + u64::from(self.shutdown_budget);
        if self.max_delay > self.delay && need > u64::from(self.max_grace) {
            return Err(SettingsError::HoldAboveMaximum {
                max_delay: self.max_delay,
                stagger: self.stagger,
                budget: self.shutdown_budget,
                need,
                max: self.max_grace,
                example: self
                    .max_grace
                    .saturating_sub(self.stagger.saturating_add(self.shutdown_budget))
                    .max(self.delay),
            });
        }
        Ok(Settings {
            delay: self.delay,
            stagger: self.stagger,
            shutdown_budget: self.shutdown_budget,
            quiet: self.quiet,
            max_delay: self.max_delay,
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
                delivery: self.helper_delivery,
            },
            profile,
            profiles,
        })
    }

    /// The version given on the command line, if any.
    pub fn kube_version(&self) -> Option<KubeVersion> {
        self.kube_version.and_then(|v| v.0)
    }
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
    /// Plan as if every node's container runtime mounts image volumes (containerd 2.1+,
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
    /// Plan as if every node's container runtime mounts image volumes (containerd 2.1+,
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
    pub output: ExplainFormat,
}

#[derive(Debug, Clone, Args)]
pub struct ProfilesArgs {
    #[command(flatten)]
    pub planning: PlanningArgs,
    /// text (a table) or json.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    pub output: ExplainFormat,
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
    pub output: crate::audit::AuditFormat,
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

fn hook_mode_flag(value: &str) -> Result<HookMode, String> {
    value
        .parse()
        .map_err(|err: &str| format!("{err} (for example auto)"))
}

fn helper_delivery_flag(value: &str) -> Result<HelperDelivery, String> {
    value
        .parse()
        .map_err(|err: &str| format!("{err} (for example auto)"))
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
    use crate::server::args::CertMode;
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
        assert_eq!(explain.output, ExplainFormat::Json);
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
