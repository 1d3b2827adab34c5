//! `--cert-mode self-managed`: a CA and serving certificate kept in a Secret, and the caBundle
//! of the webhook configuration kept pointing at that CA.
//!
//! Several replicas may start at once: the Secret is created with create-if-absent semantics
//! (a create that fails with AlreadyExists re-reads the winner's Secret), so they all converge
//! on one CA. The caBundle is kept by a task for the life of the process ([`keep_ca_bundle`]):
//! the webhook configuration may not exist yet when the pod starts (Helm creates it after the
//! Deployment, or it is re-created later), so a missing or failing configuration is retried
//! with backoff, and once set it is re-checked every minute (one GET; a replace only when the
//! caBundle differs).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

use super::ApiCall;
use crate::tls::{self, CertificateAuthority};

pub const CA_CERT_KEY: &str = "ca.crt";
pub const TLS_CERT_KEY: &str = "tls.crt";
pub const TLS_KEY_KEY: &str = "tls.key";

/// How often a caBundle that is in place is checked again.
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(60);
/// First retry after a failed attempt; doubles per failure up to [`BACKOFF_MAX`].
pub const BACKOFF_START: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The field manager of every write (server-side it names who owns the caBundle).
pub const FIELD_MANAGER: &str = "drain-webhook";

/// Every request this module makes: tests/chart.rs checks that the chart's RBAC grants each
/// one (and nothing more), tests/certs_self_managed.rs that no other request is made.
pub const API_CALLS: &[ApiCall] = &[
    ApiCall {
        verb: "get",
        group: "",
        resource: "secrets",
        named: true,
    },
    ApiCall {
        verb: "create",
        group: "",
        resource: "secrets",
        named: false,
    },
    ApiCall {
        verb: "update",
        group: "",
        resource: "secrets",
        named: true,
    },
    ApiCall {
        verb: "get",
        group: "admissionregistration.k8s.io",
        resource: "mutatingwebhookconfigurations",
        named: true,
    },
    ApiCall {
        verb: "update",
        group: "admissionregistration.k8s.io",
        resource: "mutatingwebhookconfigurations",
        named: true,
    },
];

/// Create and replace parameters with our field manager.
fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PostParams::default()
    }
}

/// Where the self-managed certificate lives and what it serves.
#[derive(Debug, Clone)]
pub struct SelfManagedConfig {
    pub namespace: String,
    pub secret_name: String,
    pub service_name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SelfManagedError {
    #[error("generating the certificates: {0}")]
    Generate(String),
    #[error("Secret {0}: {1}")]
    Secret(String, kube::Error),
    #[error(
        "Secret {0} exists but does not hold a usable {CA_CERT_KEY}/{TLS_CERT_KEY}/{TLS_KEY_KEY}"
    )]
    UnusableSecret(String),
    #[error("serving certificate: {0}")]
    Tls(#[from] tls::TlsError),
}

/// A CA and a serving certificate it signed, PEM encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// DNS names the API server may use to reach the service.
pub fn service_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
        format!("{service}.{namespace}"),
        service.to_string(),
    ]
}

/// A new CA (valid ten years) and a serving certificate for the service, signed by it.
pub fn generate(service: &str, namespace: &str) -> Result<Generated, SelfManagedError> {
    let err = |e: crate::tls::TlsError| SelfManagedError::Generate(e.to_string());
    let ca = CertificateAuthority::new(&format!("drain-webhook CA ({namespace})")).map_err(err)?;
    let leaf = ca.issue(&service_names(service, namespace)).map_err(err)?;
    Ok(Generated {
        ca_pem: ca.cert_pem(),
        cert_pem: leaf.cert_pem,
        key_pem: leaf.key_pem,
    })
}

/// The three PEM entries of a Secret, if all are there and the pair loads.
pub fn from_secret(secret: &Secret) -> Option<Generated> {
    let data = secret.data.as_ref()?;
    let text = |key: &str| -> Option<String> {
        data.get(key)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
    };
    let generated = Generated {
        ca_pem: text(CA_CERT_KEY)?,
        cert_pem: text(TLS_CERT_KEY)?,
        key_pem: text(TLS_KEY_KEY)?,
    };
    tls::load_certified_key(generated.cert_pem.as_bytes(), generated.key_pem.as_bytes()).ok()?;
    Some(generated)
}

fn to_secret(name: &str, namespace: &str, generated: &Generated) -> Secret {
    let data = BTreeMap::from([
        (
            CA_CERT_KEY.to_string(),
            ByteString(generated.ca_pem.clone().into_bytes()),
        ),
        (
            TLS_CERT_KEY.to_string(),
            ByteString(generated.cert_pem.clone().into_bytes()),
        ),
        (
            TLS_KEY_KEY.to_string(),
            ByteString(generated.key_pem.clone().into_bytes()),
        ),
    ]);
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "drain-webhook".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_string()),
        data: Some(data),
        ..Secret::default()
    }
}

/// The serving certificate and the CA that signed it.
pub struct Ensured {
    pub key: CertifiedKey,
    pub ca_pem: String,
}

/// Gets or creates the Secret; returns the serving certificate and the CA. The caBundle is
/// kept by [`keep_ca_bundle`], which the caller runs next to the server.
pub async fn ensure(
    client: Client,
    config: &SelfManagedConfig,
) -> Result<Ensured, SelfManagedError> {
    let generated = get_or_create_secret(client, config).await?;
    let key = tls::load_certified_key(generated.cert_pem.as_bytes(), generated.key_pem.as_bytes())?;
    Ok(Ensured {
        key,
        ca_pem: generated.ca_pem,
    })
}

async fn get_or_create_secret(
    client: Client,
    config: &SelfManagedConfig,
) -> Result<Generated, SelfManagedError> {
    let name = &config.secret_name;
    let secrets: Api<Secret> = Api::namespaced(client, &config.namespace);
    let secret_err = |e| SelfManagedError::Secret(name.clone(), e);
    match secrets.get_opt(name).await.map_err(secret_err)? {
        Some(existing) => {
            if let Some(generated) = from_secret(&existing) {
                tracing::info!(secret = %name, "using the certificate in the existing Secret");
                return Ok(generated);
            }
            // Present but unusable (e.g. created empty by hand): replace its contents,
            // guarded by its resourceVersion so concurrent replicas cannot both win.
            tracing::warn!(secret = %name, "Secret holds no usable certificate; generating one");
            let generated = generate(&config.service_name, &config.namespace)?;
            let mut replacement = to_secret(name, &config.namespace, &generated);
            replacement.metadata.resource_version = existing.metadata.resource_version.clone();
            match secrets.replace(name, &post_params(), &replacement).await {
                Ok(_) => Ok(generated),
                Err(kube::Error::Api(status)) if status.is_conflict() => {
                    reread(&secrets, name).await
                }
                Err(e) => Err(secret_err(e)),
            }
        }
        None => {
            let generated = generate(&config.service_name, &config.namespace)?;
            let secret = to_secret(name, &config.namespace, &generated);
            match secrets.create(&post_params(), &secret).await {
                Ok(_) => {
                    tracing::info!(secret = %name, "created the certificate Secret");
                    Ok(generated)
                }
                // Another replica created it first: use theirs.
                Err(kube::Error::Api(status)) if status.is_already_exists() => {
                    reread(&secrets, name).await
                }
                Err(e) => Err(secret_err(e)),
            }
        }
    }
}

async fn reread(secrets: &Api<Secret>, name: &str) -> Result<Generated, SelfManagedError> {
    let secret = secrets
        .get(name)
        .await
        .map_err(|e| SelfManagedError::Secret(name.to_string(), e))?;
    from_secret(&secret).ok_or_else(|| SelfManagedError::UnusableSecret(name.to_string()))
}

/// What one look at the webhook configuration found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleCheck {
    /// Every webhook already had our CA.
    Current,
    /// At least one webhook's caBundle was replaced.
    Updated,
    /// No configuration of that name (yet).
    NotFound,
    /// Someone else changed it between our get and replace.
    Conflict,
    /// The API server could not be asked or refused (logged).
    Failed,
}

/// When to look again after `outcome`, given the failed attempts in a row before it; returns
/// the delay and the failed attempts in a row after it. In place: every [`RECHECK_INTERVAL`].
/// Not (yet): [`BACKOFF_START`], doubling, at most [`BACKOFF_MAX`], for as long as it takes.
pub fn next_check(outcome: BundleCheck, failures_before: u32) -> (Duration, u32) {
    match outcome {
        BundleCheck::Current | BundleCheck::Updated => (RECHECK_INTERVAL, 0),
        BundleCheck::NotFound | BundleCheck::Conflict | BundleCheck::Failed => {
            let failures = failures_before.saturating_add(1);
            let factor = 1u32 << (failures - 1).min(16);
            (
                BACKOFF_START.saturating_mul(factor).min(BACKOFF_MAX),
                failures,
            )
        }
    }
}

/// Points `caBundle` of every webhook in `configuration` at `ca_pem`; whether anything changed.
pub fn set_ca_bundle(configuration: &mut MutatingWebhookConfiguration, ca_pem: &str) -> bool {
    let bundle = ByteString(ca_pem.as_bytes().to_vec());
    let mut changed = false;
    for webhook in configuration.webhooks.iter_mut().flatten() {
        if webhook.client_config.ca_bundle.as_ref() != Some(&bundle) {
            webhook.client_config.ca_bundle = Some(bundle.clone());
            changed = true;
        }
    }
    changed
}

/// One look: get the configuration, replace it (guarded by its resourceVersion) when a
/// caBundle differs. Never panics; every error is an outcome.
async fn check_ca_bundle(
    api: &Api<MutatingWebhookConfiguration>,
    name: &str,
    ca_pem: &str,
) -> BundleCheck {
    let mut configuration = match api.get_opt(name).await {
        Ok(Some(configuration)) => configuration,
        Ok(None) => return BundleCheck::NotFound,
        Err(err) => {
            tracing::warn!(webhook_configuration = %name, error = %err, "cannot read the MutatingWebhookConfiguration");
            return BundleCheck::Failed;
        }
    };
    if !set_ca_bundle(&mut configuration, ca_pem) {
        return BundleCheck::Current;
    }
    match api.replace(name, &post_params(), &configuration).await {
        Ok(_) => BundleCheck::Updated,
        Err(kube::Error::Api(status)) if status.is_conflict() => BundleCheck::Conflict,
        Err(err) => {
            tracing::warn!(webhook_configuration = %name, error = %err, "cannot update the caBundle");
            BundleCheck::Failed
        }
    }
}

/// Keeps `caBundle` of every webhook in the configuration `name` pointing at `ca_pem` until
/// `stop` turns true: retried with backoff until it is set, then re-checked periodically (so a
/// configuration created or re-created after the pod started is fixed within a minute).
pub async fn keep_ca_bundle(
    client: Client,
    name: String,
    ca_pem: String,
    mut stop: watch::Receiver<bool>,
) {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client);
    let mut failures = 0;
    loop {
        let outcome = check_ca_bundle(&api, &name, &ca_pem).await;
        match outcome {
            BundleCheck::Updated => {
                tracing::info!(webhook_configuration = %name, "caBundle updated");
            }
            BundleCheck::Current if failures > 0 => {
                tracing::info!(webhook_configuration = %name, "caBundle in place");
            }
            BundleCheck::NotFound if failures == 0 => {
                tracing::warn!(webhook_configuration = %name, "MutatingWebhookConfiguration not found; retrying until it exists (pods are not planned until then)");
            }
            _ => {}
        }
        let (delay, now) = next_check(outcome, failures);
        failures = now;
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

#[cfg(test)]
mod tests;
