//! Flags of the live commands: which cluster they talk to (`audit`, `explain KIND/NAME`,
//! `check`), and `check`'s own.

use std::path::PathBuf;

use clap::Args;

use crate::offline::OutputFormat;
use crate::server::args::{DEFAULT_WEBHOOK_CONFIGURATION_NAME, duration_flag};

/// Which cluster a live command talks to (kubert's pattern): the kubeconfig's current context
/// unless these say otherwise; in a pod without a kubeconfig, the in-cluster config.
#[derive(Debug, Clone, Default, Args)]
pub struct ClientArgs {
    /// Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig to use (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

/// No client could be built from the kubeconfig: always the user's setup, never the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read --kubeconfig {path}: {source}")]
    ReadKubeconfig {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error("cannot use the kubeconfig{context}: {source}")]
    Kubeconfig {
        context: String,
        source: kube::config::KubeconfigError,
    },
    #[error("no cluster configuration found (set KUBECONFIG or pass --kubeconfig): {0}")]
    Infer(#[from] kube::config::InferConfigError),
    #[error("cannot build a client from the kubeconfig: {0}")]
    Client(#[from] kube::Error),
}

impl ClientArgs {
    /// A client for the chosen cluster and context.
    pub async fn client(&self) -> Result<kube::Client, ClientError> {
        use kube::config::{Config, KubeConfigOptions, Kubeconfig};
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..KubeConfigOptions::default()
        };
        let in_context = || match &self.context {
            Some(context) => format!(" (context {context})"),
            None => String::new(),
        };
        let config = match (&self.kubeconfig, &self.context) {
            (Some(path), _) => {
                let file =
                    Kubeconfig::read_from(path).map_err(|source| ClientError::ReadKubeconfig {
                        path: path.display().to_string(),
                        source,
                    })?;
                Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(|source| ClientError::Kubeconfig {
                        context: in_context(),
                        source,
                    })?
            }
            (None, Some(_)) => Config::from_kubeconfig(&options).await.map_err(|source| {
                ClientError::Kubeconfig {
                    context: in_context(),
                    source,
                }
            })?,
            (None, None) => Config::infer().await?,
        };
        Ok(kube::Client::try_from(config)?)
    }
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Namespace of the dry-run Pod (default: the first labelled drain.io/inject=enabled).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// The MutatingWebhookConfiguration to check: the chart's full name (the release name,
    /// or <release>-drain-webhook).
    #[arg(long, env = "DRAIN_WEBHOOK_CONFIGURATION_NAME", default_value = DEFAULT_WEBHOOK_CONFIGURATION_NAME)]
    pub webhook_configuration_name: String,
    /// Run the steps again until all pass, for at most this long (e.g. 2m).
    #[arg(long, value_parser = duration_flag, value_name = "DURATION")]
    pub wait: Option<u32>,
    /// text (one line per step) or json.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    pub output: OutputFormat,
}

impl CheckArgs {
    pub fn options(&self) -> crate::check::CheckOptions {
        crate::check::CheckOptions {
            webhook_configuration: self.webhook_configuration_name.clone(),
            namespace: self.namespace.clone(),
            wait: self
                .wait
                .map(|seconds| std::time::Duration::from_secs(u64::from(seconds))),
            retry_every: std::time::Duration::from_secs(2),
        }
    }
}
