//! `--cert-mode self-managed`: a CA and serving certificate kept in a Secret, and the caBundle
//! of the webhook configuration kept pointing at that CA.

use kube::Client;
use rustls::sign::CertifiedKey;

/// Where the self-managed certificate lives and what it serves.
#[derive(Debug, Clone)]
pub struct SelfManagedConfig {
    pub namespace: String,
    pub secret_name: String,
    pub service_name: String,
    pub webhook_configuration_name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SelfManagedError {
    #[error("not implemented yet")]
    NotImplemented,
}

/// Gets or creates the Secret and patches the caBundle; returns the serving certificate.
pub async fn ensure(
    _client: Client,
    _config: &SelfManagedConfig,
) -> Result<CertifiedKey, SelfManagedError> {
    Err(SelfManagedError::NotImplemented)
}
