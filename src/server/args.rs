//! The flags that configure the server, next to the code they configure (kubert's pattern):
//! `cli` flattens [`ServerArgs`] into `drain-webhook serve`, so the command line depends on
//! the server and never the other way round.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::admission::DEFAULT_BODY_LIMIT;
use crate::duration::parse_seconds;

/// Name of the MutatingWebhookConfiguration the chart installs under its default release name;
/// the default of serve's and check's `--webhook-configuration-name`.
pub const DEFAULT_WEBHOOK_CONFIGURATION_NAME: &str = "drain-webhook";

/// Default of `--max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

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

/// The server's flags of `drain-webhook serve` (the planning and logging flags live elsewhere).
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
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
        default_value = DEFAULT_WEBHOOK_CONFIGURATION_NAME
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
    #[arg(long, env = "DRAIN_MAX_BODY_BYTES", default_value_t = DEFAULT_BODY_LIMIT)]
    pub max_body_bytes: usize,
    /// Open HTTPS connections at most; more wait in the listen backlog until one closes.
    #[arg(long, env = "DRAIN_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS, value_parser = max_connections_flag, value_name = "N")]
    pub max_connections: usize,
    /// Do not contact the API server: run on flags alone.
    #[arg(long, env = "DRAIN_NO_CLUSTER")]
    pub no_cluster: bool,
    /// Observe drains: the replica holding the Lease watches planned pods and reads their
    /// drain records (metrics, Events, GET /drains). Needs --namespace. `--observe=false`: off.
    #[arg(long, env = "DRAIN_OBSERVE", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub observe: bool,
    /// The observer's Lease, in --namespace.
    #[arg(
        long,
        env = "DRAIN_OBSERVE_LEASE_NAME",
        default_value = "drain-webhook-observer"
    )]
    pub observe_lease_name: String,
    /// How long the Lease holds without renewal before another replica takes over.
    #[arg(long, env = "DRAIN_OBSERVE_LEASE_DURATION", default_value = "15s", value_parser = lease_flag, value_name = "DURATION")]
    pub observe_lease_duration: u32,
}

impl ServerArgs {
    /// The certificate mode in force, with its default applied.
    pub fn effective_cert_mode(&self) -> CertMode {
        match (self.cert_mode, &self.tls_cert) {
            (Some(mode), _) => mode,
            (None, Some(_)) => CertMode::Files,
            (None, None) => CertMode::SelfSigned,
        }
    }

    /// The observer's settings, in the webhook's namespace; this process's identity is its
    /// pod name (HOSTNAME) and a per-process suffix.
    pub fn observer_config(&self, namespace: String) -> crate::observe::ObserverConfig {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "drain-webhook".into());
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let duration = Duration::from_secs(u64::from(self.observe_lease_duration));
        crate::observe::ObserverConfig {
            lease: crate::observe::LeaseConfig {
                namespace,
                name: self.observe_lease_name.clone(),
                identity: format!("{host}_{}_{:x}", std::process::id(), started & 0xffff_ffff),
                duration,
                // client-go's ratio: retry every 2 s of a 15 s lease.
                retry: (duration * 2 / 15).max(Duration::from_millis(200)),
            },
            limits: crate::observe::Limits::default(),
            planner: None,
        }
    }

    pub fn shutdown_delay(&self) -> Duration {
        Duration::from_secs(u64::from(self.shutdown_delay))
    }
}

/// A duration flag in whole seconds; the error gives an example (shared with the planning
/// flags in `cli`).
pub fn duration_flag(value: &str) -> Result<u32, String> {
    parse_seconds(value).map_err(|err| format!("{err} (for example 10s, 90 or 1m30s)"))
}

/// Q: a duration of at least one second (a quiet window of 0 would release at once).
pub fn quiet_flag(value: &str) -> Result<u32, String> {
    match duration_flag(value)? {
        0 => Err("the quiet window must be at least 1s (for example 3s)".into()),
        seconds => Ok(seconds),
    }
}

/// The observer's Lease duration: at least one second (a Lease counts whole seconds).
fn lease_flag(value: &str) -> Result<u32, String> {
    match duration_flag(value)? {
        0 => Err("the Lease duration must be at least 1s (for example 15s)".into()),
        seconds => Ok(seconds),
    }
}

fn max_connections_flag(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a positive number of connections (for example 1024)".into()),
    }
}
