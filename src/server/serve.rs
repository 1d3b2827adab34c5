//! `drain-webhook serve`: from the command line to a running server, and back down on
//! SIGTERM or SIGINT.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::args::{CertMode, ServerArgs};
use super::{AppState, ServerError, ServerOptions, ShutdownHandle, bind};
use crate::admission::Reviewer;
use crate::capabilities::ImageVolumeNodes;
use crate::capabilities::{NamespaceLookup, NoNamespaces, NodeLookup};
use crate::cluster::{self, NamespaceCache, NodeCache};
use crate::metrics::Metrics;
use crate::observe::Observed;
use crate::plan::{choose_delivery, describe_delivery};
use crate::settings::{KubeVersion, Settings};
use crate::tls::{self, CertFiles, CertResolver, TlsError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("--cert-mode files needs both --tls-cert and --tls-key")]
    MissingCertFiles,
    #[error("serving certificate: {0}")]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("cannot write the self-signed certificate to {path}: {source}")]
    WriteCert {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("--cert-mode self-managed: {0}")]
    SelfManaged(String),
    #[error("a second {0} during the graceful shutdown: aborted, in-flight requests dropped")]
    Aborted(&'static str),
}

/// Runs the webhook until SIGTERM or SIGINT, then shuts down gracefully. `kube_version`:
/// the version from the command line; `None` asks the API server (when there is one).
pub async fn run(
    settings: Settings,
    kube_version: Option<KubeVersion>,
    args: ServerArgs,
) -> Result<(), ServeError> {
    let settings = Arc::new(settings);
    let observed = Arc::new(Observed::default());
    let metrics = Arc::new(Metrics::with_series(|registry| observed.register(registry)));
    let (stop_tx, stop_rx) = watch::channel(false);

    let client = if args.no_cluster {
        tracing::info!("--no-cluster: running on flags alone");
        None
    } else {
        cluster::connect().await
    };
    let kube_version = match (kube_version, &client) {
        (Some(version), _) => Some(version),
        (None, Some(client)) => cluster::server_version(client).await,
        (None, None) => None,
    };
    let namespaces: Arc<dyn NamespaceLookup> = match &client {
        Some(client) => Arc::new(NamespaceCache::start(client.clone(), stop_rx.clone())),
        None => Arc::new(NoNamespaces),
    };
    tracing::info!(
        kube_version = %kube_version.map_or_else(|| "unknown".to_string(), |v| v.to_string()),
        hook_mode = %settings.hook_mode,
        "planning settings loaded"
    );
    // The delivery decision, now (nodes unknown until the watch has listed them) and on every
    // change of what the nodes can mount.
    let report_delivery = {
        let (setting, metrics) = (settings.helper.delivery, Arc::clone(&metrics));
        move |nodes: &ImageVolumeNodes| {
            let choice = |policy| {
                choose_delivery(setting, kube_version, nodes.can_mount(), policy)
                    .delivery
                    .as_str()
            };
            metrics.helper_delivery(nodes.state(), choice(None), choice(Some("Never")));
            metrics.image_volume_blocking_nodes(nodes.blocking_by_reason());
            tracing::info!("{}", describe_delivery(setting, kube_version, nodes));
        }
    };
    report_delivery(&ImageVolumeNodes::Unknown);
    let nodes: Arc<dyn NodeLookup> = match &client {
        Some(client) => Arc::new(NodeCache::start(
            client.clone(),
            stop_rx.clone(),
            report_delivery,
        )),
        None => Arc::new(ImageVolumeNodes::Unknown),
    };

    // The self-signed CA file is this process's own: removed again on a clean exit.
    let mut local_ca_dir = None;
    let resolver = match args.effective_cert_mode() {
        CertMode::Files => {
            let (Some(cert), Some(key)) = (args.tls_cert.clone(), args.tls_key.clone()) else {
                return Err(ServeError::MissingCertFiles);
            };
            let files = CertFiles { cert, key };
            let (key, contents) = files.load().await?;
            let resolver = Arc::new(CertResolver::new(key));
            let counted = Arc::clone(&metrics);
            tokio::spawn(tls::reload_certificates(
                files,
                Arc::clone(&resolver),
                move |ok| counted.certificate_reloaded(ok),
                contents,
                Duration::from_secs(u64::from(args.tls_reload_interval.max(1))),
                stop_rx.clone(),
            ));
            resolver
        }
        CertMode::SelfSigned => {
            let pair = tls::self_signed(&tls::LOCAL_NAMES)?;
            let path = write_local_ca(&pair.cert_pem)?;
            local_ca_dir = path.parent().map(Path::to_path_buf);
            let key = tls::load_certified_key(pair.cert_pem.as_bytes(), pair.key_pem.as_bytes())?;
            tracing::info!(
                ca = %path.display(),
                "self-signed certificate for localhost; try: curl --cacert {} -H 'Content-Type: application/json' --data @tests/data/reviews/pod-create-nginx-app.json https://localhost:{}/mutate",
                path.display(),
                args.listen.port()
            );
            Arc::new(CertResolver::new(key))
        }
        CertMode::SelfManaged => {
            let Some(client) = client.clone() else {
                return Err(ServeError::SelfManaged(
                    "needs cluster access (drop --no-cluster)".into(),
                ));
            };
            let ensured = crate::cluster::certs::ensure(
                client.clone(),
                &crate::cluster::certs::SelfManagedConfig {
                    namespace: args
                        .namespace
                        .clone()
                        .ok_or_else(|| ServeError::SelfManaged("needs --namespace".into()))?,
                    secret_name: args.tls_secret_name.clone(),
                    service_name: args.service_name.clone(),
                },
            )
            .await
            .map_err(|err| ServeError::SelfManaged(err.to_string()))?;
            // The caBundle is kept in the background: the configuration may not exist yet.
            tokio::spawn(crate::cluster::certs::keep_ca_bundle(
                client,
                args.webhook_configuration_name.clone(),
                ensured.ca_pem,
                stop_rx.clone(),
            ));
            Arc::new(CertResolver::new(ensured.key))
        }
    };

    let reviewer = Reviewer {
        settings,
        own_namespace: args.namespace.clone().filter(|ns| !ns.is_empty()),
        kube_version,
        namespaces,
        nodes,
    };
    let reviewer = Arc::new(reviewer);
    let observer = match (&client, args.namespace.clone().filter(|ns| !ns.is_empty())) {
        (Some(client), Some(namespace)) if args.observe => Some(tokio::spawn(crate::observe::run(
            client.clone(),
            crate::observe::ObserverConfig {
                planner: Some(Arc::clone(&reviewer)),
                ..args.observer_config(namespace)
            },
            Arc::clone(&observed),
            stop_rx.clone(),
        ))),
        (Some(_), None) if args.observe => {
            tracing::warn!("drain observer off: it needs --namespace for its Lease");
            None
        }
        _ => None,
    };
    let options = ServerOptions {
        listen: args.listen,
        admin_listen: args.admin_listen,
        body_limit: args.max_body_bytes,
        max_connections: args.max_connections,
        shutdown_delay: args.shutdown_delay(),
        ..ServerOptions::default()
    };
    let state = AppState {
        reviewer: Arc::clone(&reviewer),
        metrics: Arc::clone(&metrics),
        observed,
        certificates: Arc::clone(&resolver),
    };
    let tls_config = Arc::new(tls::server_config(resolver)?);
    let bound = bind(options, state, tls_config).await?;
    let handle = bound.shutdown_handle();
    let mut signals = tokio::spawn(shutdown_on_signal(handle)?);
    let running = bound.serve();
    let finished = tokio::select! {
        () = running.wait() => Ok(()),
        // A second signal: the caller exits at once, whatever is still in flight.
        Ok(signal) = &mut signals => Err(ServeError::Aborted(signal)),
    };
    signals.abort();
    stop_tx.send_replace(true);
    // The observer releases its Lease, so another replica takes over at once.
    if let Some(observer) = observer {
        let _ = tokio::time::timeout(Duration::from_secs(5), observer).await;
    }
    if let Some(dir) = local_ca_dir
        && let Err(err) = std::fs::remove_dir_all(&dir)
    {
        tracing::warn!(dir = %dir.display(), error = %err, "cannot remove the self-signed CA");
    }
    finished
}

/// Installs the handlers now (so a signal right after start is not lost) and returns the
/// future that triggers the graceful shutdown on the first SIGTERM or SIGINT and returns the
/// name of a second one: someone who asks twice wants the process gone now (kubert does the
/// same).
fn shutdown_on_signal(
    handle: ShutdownHandle,
) -> Result<impl Future<Output = &'static str> + Send + 'static, ServeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    Ok(async move {
        let first = next_signal(&mut term, &mut int).await;
        tracing::info!(
            signal = first,
            "shutdown requested; a second SIGTERM or SIGINT aborts at once"
        );
        handle.trigger();
        let second = next_signal(&mut term, &mut int).await;
        tracing::error!(
            signal = second,
            "second signal during the graceful shutdown: aborting at once"
        );
        second
    })
}

/// The name of the next SIGTERM or SIGINT.
async fn next_signal(
    term: &mut tokio::signal::unix::Signal,
    int: &mut tokio::signal::unix::Signal,
) -> &'static str {
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Writes the self-signed certificate where a client can point `--cacert` at it.
fn write_local_ca(cert_pem: &str) -> Result<PathBuf, ServeError> {
    let dir = std::env::temp_dir().join(format!("drain-webhook-{}", std::process::id()));
    let path = dir.join("ca.crt");
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, cert_pem))
        .map_err(|source| ServeError::WriteCert {
            path: path.clone(),
            source,
        })?;
    Ok(path)
}
