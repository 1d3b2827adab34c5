//! Unit tests of `certs`.
use super::*;

#[test]
fn generated_certificates_chain_to_their_ca_and_round_trip_through_a_secret() {
    let generated = generate("drain-webhook", "drain-system").unwrap();
    let key = tls::load_certified_key(generated.cert_pem.as_bytes(), generated.key_pem.as_bytes())
        .unwrap();

    // The serving certificate verifies against the CA for the service DNS name.
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    let ca =
        rustls::pki_types::CertificateDer::from_pem_slice(generated.ca_pem.as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        tls::provider(),
    )
    .build()
    .unwrap();
    let name = rustls::pki_types::ServerName::try_from("drain-webhook.drain-system.svc").unwrap();
    verifier
        .verify_server_cert(
            &key.cert[0],
            &[],
            &name,
            &[],
            rustls::pki_types::UnixTime::now(),
        )
        .unwrap();

    let secret = to_secret("drain-webhook-tls", "drain-system", &generated);
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    assert_eq!(from_secret(&secret), Some(generated));
    assert_eq!(from_secret(&Secret::default()), None);
}

#[test]
fn a_missing_configuration_is_retried_with_backoff_until_it_is_set() {
    let mut failures = 0;
    let mut delays = Vec::new();
    for _ in 0..8 {
        let (delay, now) = next_check(BundleCheck::NotFound, failures);
        delays.push(delay.as_secs());
        failures = now;
    }
    assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
    // Never gives up, never overflows.
    assert_eq!(next_check(BundleCheck::Failed, u32::MAX).0, BACKOFF_MAX);
    // Once set: back to the periodic re-check, failures forgotten.
    assert_eq!(
        next_check(BundleCheck::Updated, failures),
        (RECHECK_INTERVAL, 0)
    );
    assert_eq!(next_check(BundleCheck::Current, 0), (RECHECK_INTERVAL, 0));
    // A conflict is retried soon.
    assert_eq!(next_check(BundleCheck::Conflict, 0), (BACKOFF_START, 1));
}

#[test]
fn the_ca_bundle_is_replaced_only_when_it_differs() {
    use k8s_openapi::api::admissionregistration::v1::MutatingWebhook;
    let webhook = |bundle: Option<&str>| MutatingWebhook {
        name: "drain.io".into(),
        client_config: k8s_openapi::api::admissionregistration::v1::WebhookClientConfig {
            ca_bundle: bundle.map(|b| ByteString(b.as_bytes().to_vec())),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut configuration = MutatingWebhookConfiguration {
        webhooks: Some(vec![webhook(None), webhook(Some("old"))]),
        ..Default::default()
    };
    assert!(set_ca_bundle(&mut configuration, "new"));
    for webhook in configuration.webhooks.as_ref().unwrap() {
        assert_eq!(
            webhook.client_config.ca_bundle,
            Some(ByteString(b"new".to_vec()))
        );
    }
    assert!(!set_ca_bundle(&mut configuration, "new"));
    assert!(!set_ca_bundle(
        &mut MutatingWebhookConfiguration::default(),
        "new"
    ));
}
