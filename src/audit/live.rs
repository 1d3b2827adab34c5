//! `audit -n NS | -A` and `explain KIND/NAME`: objects read from the cluster, paginated.

use super::*;
use crate::offline::OutputFormat;

/// What `audit -n NS` / `-A` read from the cluster.
#[derive(Debug, Default)]
pub struct Cluster {
    /// Workloads, Pods and Services, each with its `kind` set.
    pub objects: Vec<Value>,
    /// Namespace -> (its `drain.io/*` annotations, labelled `drain.io/inject=enabled`).
    pub namespaces: BTreeMap<String, (BTreeMap<String, String>, bool)>,
    /// One clear line per list the API refused (403), the rest still audited.
    pub denied: Vec<String>,
    /// The Service the webhook configuration calls, if known: where the observed drains are
    /// read.
    pub webhook_service: Option<super::WebhookService>,
}

impl Cluster {
    /// The webhook's own namespace (its Service's, from the webhook configuration), if known.
    pub fn webhook_namespace(&self) -> Option<&str> {
        self.webhook_service.as_ref().map(|s| s.namespace.as_str())
    }
}

/// Finds the webhook's Service and own namespace: the Service its
/// MutatingWebhookConfiguration `configuration` calls. Absent (404) leaves it unknown; a 403
/// is recorded in `denied`.
pub async fn read_webhook_namespace(
    client: &kube::Client,
    configuration: &str,
    cluster: &mut Cluster,
) -> Result<(), kube::Error> {
    use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
    let api: kube::Api<MutatingWebhookConfiguration> = kube::Api::all(client.clone());
    match api.get_opt(configuration).await {
        Ok(found) => {
            cluster.webhook_service = found.and_then(|c| {
                c.webhooks?.into_iter().find_map(|w| {
                    let service = w.client_config.service?;
                    Some(super::WebhookService {
                        namespace: service.namespace,
                        name: service.name,
                    })
                })
            });
            Ok(())
        }
        Err(err) if forbidden(&err) => {
            cluster.denied.push(format!(
                "cannot read MutatingWebhookConfiguration {configuration} (403): the webhook's own namespace is not named; grant get on mutatingwebhookconfigurations (the chart's audit ClusterRole, docs/audit.md)"
            ));
            Ok(())
        }
        Err(err) => Err(err),
    }
}

/// The kinds `audit` lists in each namespace: (group, version, kind).
pub(super) const LISTED: [(&str, &str, &str); 8] = [
    ("apps", "v1", "Deployment"),
    ("apps", "v1", "StatefulSet"),
    ("apps", "v1", "DaemonSet"),
    ("apps", "v1", "ReplicaSet"),
    ("batch", "v1", "Job"),
    ("batch", "v1", "CronJob"),
    ("", "v1", "Pod"),
    ("", "v1", "Service"),
];

/// Objects per list request; continue tokens fetch the rest.
pub const PAGE_SIZE: u32 = 500;

pub(super) fn forbidden(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 403)
}

/// Every page of one list, following continue tokens (one request per page, never per object).
async fn list_all(
    api: &kube::Api<kube::core::DynamicObject>,
) -> Result<Vec<kube::core::DynamicObject>, kube::Error> {
    let mut items = Vec::new();
    let mut params = kube::api::ListParams::default().limit(PAGE_SIZE);
    loop {
        let page = api.list(&params).await?;
        items.extend(page.items);
        match page.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(items),
        }
    }
}

/// Reads `namespace` (or every namespace) from the cluster. A list the API refuses (403) is
/// recorded in `denied` and skipped; any other error stops the audit.
pub async fn read_cluster(
    client: &kube::Client,
    namespace: Option<&str>,
) -> Result<Cluster, kube::Error> {
    use kube::api::{Api, ApiResource, GroupVersionKind};
    let started = std::time::Instant::now();
    let mut cluster = Cluster::default();
    let ns_resource = ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "Namespace"));
    let namespaces: Vec<kube::core::DynamicObject> = match namespace {
        Some(name) => {
            let api: Api<kube::core::DynamicObject> = Api::all_with(client.clone(), &ns_resource);
            match api.get(name).await {
                Ok(ns) => vec![ns],
                Err(err) if forbidden(&err) => {
                    cluster.denied.push(format!(
                        "cannot read namespace {name} (403): its drain.io annotations and opt-in label are unknown; grant get on namespaces (docs/audit.md, RBAC)"
                    ));
                    let mut ns = kube::core::DynamicObject::new(name, &ns_resource);
                    ns.metadata.name = Some(name.to_owned());
                    vec![ns]
                }
                Err(err) => return Err(err),
            }
        }
        None => list_all(&Api::all_with(client.clone(), &ns_resource)).await?,
    };
    for ns in &namespaces {
        let name = ns.metadata.name.clone().unwrap_or_default();
        let annotations: BTreeMap<String, String> = ns
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k.starts_with("drain.io/"))
            .collect();
        let opted_in = ns
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(INJECT))
            .is_some_and(|v| v == "enabled");
        cluster
            .namespaces
            .insert(name.clone(), (annotations, opted_in));
        for (group, version, kind) in LISTED {
            let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
            let api = Api::namespaced_with(client.clone(), &name, &resource);
            match list_all(&api).await {
                Ok(items) => {
                    for item in items {
                        let mut value = serde_json::to_value(&item).unwrap_or(Value::Null);
                        value["kind"] = Value::from(kind);
                        cluster.objects.push(value);
                    }
                }
                Err(err) if forbidden(&err) => cluster.denied.push(format!(
                    "cannot list {} in namespace {name} (403): skipped; grant get/list with the chart's audit ClusterRole (docs/audit.md)",
                    resource.plural
                )),
                Err(err) => return Err(err),
            }
        }
        if started.elapsed() > std::time::Duration::from_secs(2) {
            eprintln!(
                "audit: read {} of {} namespaces, {} objects so far",
                cluster.namespaces.len(),
                namespaces.len(),
                cluster.objects.len()
            );
        }
    }
    Ok(cluster)
}

/// Audits what [`read_cluster`] read: each namespace planned with its own annotations and
/// opt-in label.
pub fn audit_cluster(
    mut cluster: Cluster,
    settings: &crate::settings::Settings,
    kube_version: Option<crate::settings::KubeVersion>,
) -> Result<Vec<Row>, OfflineError> {
    let mut objects = Vec::new();
    for doc in std::mem::take(&mut cluster.objects) {
        flatten(doc, &mut objects);
    }
    let own = cluster.webhook_namespace();
    let namespaces = &cluster.namespaces;
    audit_objects(&objects, &|namespace| {
        let known = namespaces.get(namespace);
        (
            PodContext {
                settings,
                namespace_annotations: known.map(|(a, _)| a),
                kube_version,
                // Audit reads hooks and grace, which no delivery changes.
                image_volume_nodes: None,
            },
            AuditOptions {
                namespace_opted_in: known.is_some_and(|(_, opted_in)| *opted_in),
                webhook_namespace: own == Some(namespace),
            },
        )
    })
}

/// `explain KIND/NAME`: the kind a user typed (`deploy`, `Deployment`, `sts`, ...).
pub fn kind_alias(kind: &str) -> Option<&'static str> {
    Some(match kind.to_ascii_lowercase().as_str() {
        "deployment" | "deployments" | "deploy" => "Deployment",
        "statefulset" | "statefulsets" | "sts" => "StatefulSet",
        "daemonset" | "daemonsets" | "ds" => "DaemonSet",
        "replicaset" | "replicasets" | "rs" => "ReplicaSet",
        "job" | "jobs" => "Job",
        "cronjob" | "cronjobs" | "cj" => "CronJob",
        "pod" | "pods" | "po" => "Pod",
        _ => return None,
    })
}

/// `explain` on what [`read_cluster`] read: the timeline (or JSON) of `explain -f` for each
/// workload not owned by another one (or only `target`, kind and name), each planned with its
/// namespace's annotations.
pub fn explain_cluster(
    cluster: &Cluster,
    settings: &crate::settings::Settings,
    kube_version: Option<crate::settings::KubeVersion>,
    target: Option<(&str, &str)>,
    format: OutputFormat,
) -> Result<String, OfflineError> {
    let mut by_namespace: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for object in &cluster.objects {
        let kind = str_at(object, "/kind");
        let name = str_at(object, "/metadata/name");
        let owned = object
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|refs| refs.iter().any(|r| WORKLOADS.contains(&str_at(r, "/kind"))));
        let wanted = match target {
            Some((k, n)) => k == kind && n == name,
            None => WORKLOADS.contains(&kind) && !owned,
        };
        if wanted {
            by_namespace
                .entry(str_at(object, "/metadata/namespace"))
                .or_default()
                .push(object);
        }
    }
    if by_namespace.is_empty() {
        return Err(OfflineError::Parse(match target {
            Some((kind, name)) => {
                format!("{kind} {name} not found (check the name and -n NAMESPACE)")
            }
            None => "no workload found".into(),
        }));
    }
    let mut text = String::new();
    let mut json = Vec::new();
    for (namespace, objects) in by_namespace {
        let input =
            serde_json::to_string(&objects).map_err(|e| OfflineError::Output(e.to_string()))?;
        let ctx = PodContext {
            settings,
            namespace_annotations: cluster.namespaces.get(namespace).map(|(a, _)| a),
            kube_version,
            // As offline explain: the conservative answer (no image volume).
            image_volume_nodes: None,
        };
        // Each namespace as JSON, the whole rendered once in the format asked for.
        let structured = match format {
            OutputFormat::Text => OutputFormat::Text,
            _ => OutputFormat::Json,
        };
        let out = crate::offline::explain(&input, &ctx, structured)?;
        match format {
            OutputFormat::Text => text.push_str(&out),
            _ => {
                if let Ok(Value::Array(items)) = serde_json::from_str(&out) {
                    json.extend(items);
                }
            }
        }
    }
    match format.structured(&json) {
        Some(rendered) => rendered.map_err(OfflineError::Output),
        None => Ok(text),
    }
}
