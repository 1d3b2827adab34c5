//! Reading the drain observer's aggregates for a live audit: the leader's `GET /drains` on the
//! webhook Service's admin port, through the API server's service proxy (as `check` reads the
//! served certificate). Whatever stands in the way is one [`Unavailable`] line naming the
//! reason and the fix; the audit goes on without the observed drains.

use std::fmt;

use kube::Client;

use super::observed::{DRAINS_PATH, DrainsReport, WorkloadReport};
use crate::cluster::proxy::{ServicePort, get_text};

/// The Service the webhook configuration calls, from its `clientConfig.service`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookService {
    pub namespace: String,
    pub name: String,
}

/// The chart's Service names its plain-HTTP admin port (`/metrics`, `/drains`) `admin`
/// (charts/drain-webhook/templates/service.yaml); by name, whatever number it has.
pub const ADMIN_PORT: &str = "admin";
pub const ADMIN_SCHEME: &str = "http";

/// Requests at most: the API server sends each to a ready replica at random, and only the
/// leader has the aggregates (two replicas: all six miss it once in 64 runs).
pub const ATTEMPTS: usize = 6;

impl WebhookService {
    pub fn admin_port(&self) -> ServicePort<'_> {
        ServicePort {
            namespace: &self.namespace,
            scheme: ADMIN_SCHEME,
            service: &self.name,
            port: ADMIN_PORT,
        }
    }
}

/// Why the observed drains are not shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// No MutatingWebhookConfiguration of that name (or not readable), or one that calls no
    /// Service.
    NoService { configuration: String },
    /// RBAC refused `get` on `services/proxy` (403).
    Forbidden { namespace: String, resource: String },
    /// No ready replica behind the port (503), or no such port.
    NoReplica { namespace: String, detail: String },
    /// The webhook serves no `/drains` (404): a version older than the observer.
    NotServed { path: String },
    /// Another error on the way (502, a timeout, a NetworkPolicy in the way, ...).
    Unreachable { path: String, detail: String },
    /// The answer is not the observer's report.
    NotAReport { path: String, detail: String },
    /// The replicas run with the observer off.
    ObserverOff,
    /// The replicas that answered follow, and no replica holds the Lease.
    NoLeader { namespace: String },
    /// Only followers answered; they name the leader.
    OnlyFollowers {
        namespace: String,
        holder: String,
        attempts: usize,
    },
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (reason, fix) = match self {
            Unavailable::NoService { configuration } => (
                format!("the webhook's Service is unknown (the MutatingWebhookConfiguration {configuration} is absent, unreadable or calls no Service)"),
                "pass --webhook-configuration-name (the chart's full name); get on it is in the chart's audit ClusterRole".to_string(),
            ),
            Unavailable::Forbidden { namespace, resource } => (
                format!("get on services/proxy {resource} in {namespace} is forbidden (403)"),
                "bind the chart's audit ClusterRole (audit.rbac.create=true, docs/audit.md), which grants it".to_string(),
            ),
            Unavailable::NoReplica { namespace, detail } => (
                format!("no webhook replica answers on its Service's admin port ({detail})"),
                format!("kubectl -n {namespace} get pods,endpointslices shows whether a replica is Ready"),
            ),
            Unavailable::NotServed { path } => (
                format!("{path}: 404: the webhook serves no drains (a version older than the observer)"),
                "upgrade drain-webhook".to_string(),
            ),
            Unavailable::Unreachable { path, detail } => (
                format!("{path}: {detail}"),
                "with networkPolicy.enabled, admit the API server to the admin port (networkPolicy.adminFrom); see the webhook's logs".to_string(),
            ),
            Unavailable::NotAReport { path, detail } => (
                format!("{path} did not answer the observer's report ({detail})"),
                "is the Service's admin port backed by drain-webhook? see its targetPort".to_string(),
            ),
            Unavailable::ObserverOff => (
                "the webhook runs with the drain observer off".to_string(),
                "enable it: helm upgrade --set observer.enabled=true (serve --observe)".to_string(),
            ),
            Unavailable::NoLeader { namespace } => (
                "no replica holds the observer's Lease yet".to_string(),
                format!("run again within the Lease's duration; if it stays so, kubectl -n {namespace} logs -l app.kubernetes.io/name=drain-webhook"),
            ),
            Unavailable::OnlyFollowers { namespace, holder, attempts } => (
                format!("{attempts} answers came from replicas that do not lead; the leader is {holder}"),
                format!("run again (the API server picks a replica at random); if it stays so, the leader is not Ready: kubectl -n {namespace} get pods"),
            ),
        };
        write!(f, "observed drains not shown: {reason}; fix: {fix}")
    }
}

/// The leader's aggregates, asking up to [`ATTEMPTS`] times until the leader answers.
/// `service`: what the configuration `configuration` calls (`None`: it calls none).
pub async fn read_observed(
    client: &Client,
    service: Option<&WebhookService>,
    configuration: &str,
) -> Result<Vec<WorkloadReport>, Unavailable> {
    let Some(service) = service else {
        return Err(Unavailable::NoService {
            configuration: configuration.to_string(),
        });
    };
    let port = service.admin_port();
    let path = port.proxy_path(DRAINS_PATH);
    let mut holder = None;
    let mut observing = false;
    for _ in 0..ATTEMPTS {
        let answer = match get_text(client, &port, DRAINS_PATH).await {
            Ok(text) => text,
            Err(err) => return Err(failed(service, &port, &path, &err)),
        };
        let answer: DrainsReport =
            serde_json::from_str(&answer).map_err(|err| Unavailable::NotAReport {
                path: path.clone(),
                detail: err.to_string(),
            })?;
        if answer.leader {
            return Ok(answer.workloads);
        }
        observing |= answer.identity.is_some();
        holder = holder.or(answer.holder);
    }
    Err(match (observing, holder) {
        (_, Some(holder)) => Unavailable::OnlyFollowers {
            namespace: service.namespace.clone(),
            holder,
            attempts: ATTEMPTS,
        },
        (true, None) => Unavailable::NoLeader {
            namespace: service.namespace.clone(),
        },
        (false, None) => Unavailable::ObserverOff,
    })
}

fn failed(
    service: &WebhookService,
    port: &ServicePort<'_>,
    path: &str,
    err: &kube::Error,
) -> Unavailable {
    let kube::Error::Api(status) = err else {
        return Unavailable::Unreachable {
            path: path.to_string(),
            detail: err.to_string(),
        };
    };
    match status.code {
        403 => Unavailable::Forbidden {
            namespace: service.namespace.clone(),
            resource: port.resource_name(),
        },
        // The API server's own 404 (a Status): the Service is gone.
        404 if status.reason == "NotFound" => Unavailable::NoReplica {
            namespace: service.namespace.clone(),
            detail: format!("404: {}", status.message),
        },
        404 => Unavailable::NotServed {
            path: path.to_string(),
        },
        503 => Unavailable::NoReplica {
            namespace: service.namespace.clone(),
            detail: format!("503: {}", status.message),
        },
        code => Unavailable::Unreachable {
            path: path.to_string(),
            detail: format!("{code}: {}", status.message),
        },
    }
}
