//! The `ca-bundle` step: the caBundle of the webhook configuration verifies the certificate the
//! webhook actually serves, read through the API server's service proxy (`GET /certificate`).

use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use kube::Client;

use super::{Configured, Step, StepResult, fail, pass, request_failed};
use crate::served::CERTIFICATE_PATH;

pub const CA_BUNDLE: Step = Step {
    name: "ca-bundle",
    description: "the caBundle verifies the certificate the webhook serves",
    fatal: false,
};

/// Reads what the webhook serves through the API server's service proxy and verifies it with
/// the caBundle, for the name the API server checks (`SERVICE.NAMESPACE.svc`).
pub(super) async fn ca_bundle(client: &Client, configured: &Configured) -> StepResult {
    let fix_bundle = format!(
        "the API server cannot call the webhook (with failurePolicy Ignore, pods start unprotected). Self-managed certificates: the server rewrites the caBundle (kubectl -n {ns} logs -l app.kubernetes.io/name=drain-webhook); cert-manager: see its cainjector; chart certificates: helm upgrade",
        ns = configured.namespace
    );
    if configured.ca_bundle.is_empty() {
        return fail(CA_BUNDLE, "the caBundle is empty".into(), fix_bundle);
    }
    let mut roots = rustls::RootCertStore::empty();
    let bundle: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&configured.ca_bundle)
            .filter_map(Result::ok)
            .collect();
    let (added, _) = roots.add_parsable_certificates(bundle);
    if added == 0 {
        return fail(
            CA_BUNDLE,
            "the caBundle holds no usable PEM certificate".into(),
            fix_bundle,
        );
    }
    let (proxy, served) = configured.served(client, CERTIFICATE_PATH).await;
    let served = match served {
        Ok(text) => text,
        Err(kube::Error::Api(status)) if status.code == 404 => {
            return fail(
                CA_BUNDLE,
                format!(
                    "{proxy}: 404: the webhook does not show its certificate (a version older than this check?)"
                ),
                "upgrade drain-webhook to this version",
            );
        }
        Err(err) => {
            return request_failed(
                CA_BUNDLE,
                "reading the served certificate through the service proxy",
                &err,
                &format!(
                    "get on services/proxy (https:{}:{}) in {}",
                    configured.service, configured.port, configured.namespace
                ),
            );
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(served.as_bytes())
        .filter_map(Result::ok)
        .collect();
    let Some((leaf, intermediates)) = chain.split_first() else {
        return fail(
            CA_BUNDLE,
            format!("{proxy} answered no PEM certificate"),
            "is the Service's port backed by drain-webhook? see the Service's targetPort",
        );
    };
    let dns_name = configured.dns_name();
    let verified = ServerName::try_from(dns_name.clone())
        .map_err(|err| err.to_string())
        .and_then(|name| {
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                crate::tls::provider(),
            )
            .build()
            .map_err(|err| err.to_string())?;
            verifier
                .verify_server_cert(leaf, intermediates, &name, &[], UnixTime::now())
                .map_err(|err| err.to_string())
        });
    match verified {
        Ok(_) => pass(
            CA_BUNDLE,
            format!("the caBundle verifies the certificate served for {dns_name}"),
        ),
        Err(err) => fail(
            CA_BUNDLE,
            format!("the caBundle does not verify the certificate served for {dns_name}: {err}"),
            fix_bundle,
        ),
    }
}
