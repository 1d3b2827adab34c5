//! Unit tests of `annotations`.
use super::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn pod_wins_over_namespace() {
    let pod = map(&[(DELAY, "20s")]);
    let ns = map(&[(DELAY, "5"), (STAGGER, "7s")]);
    let o = Overrides::resolve(Some(&pod), Some(&ns), Catalogue::BUILTIN).unwrap();
    assert_eq!(
        o.delay.as_ref().map(|d| (d.value, d.source)),
        Some((20, Source::Pod))
    );
    assert_eq!(
        o.stagger.as_ref().map(|d| (d.value, d.source)),
        Some((7, Source::Namespace))
    );
    assert!(o.shutdown_budget.is_none());
}

#[test]
fn bad_values_name_the_annotation_the_value_and_an_example() {
    for (key, value) in [
        (DELAY, "abc"),
        (STAGGER, "-3s"),
        (SHUTDOWN_BUDGET, "10x"),
        (HOOK, "magic"),
        (PROXIES, "Nginx"),
        (NOTIFY, "http://example.com/drain"),
        (NOTIFY, "https://127.0.0.1:80/x"),
        // Both were admitted once and made the helper exit 2 before any delay.
        (NOTIFY, "http://127.0.0.1:8080/drain#now"),
        (NOTIFY, "http://127.0.0.1:+80/x"),
        (NOTIFY, "http://10.0.0.1:8080/drain"),
        (WAIT_IDLE, "+80"),
        (WAIT_IDLE, "http"),
        (WAIT_IDLE, "0"),
        (INJECT, "maybe"),
        (GRACEFUL_STOP, "sigquit"),
        (PROFILE, "aws"),
        (ENV, "yes"),
        (ENV, "1"),
        (DELIVERY, "init"),
        (DELIVERY, "Image-Volume"),
    ] {
        let err =
            Overrides::resolve(Some(&map(&[(key, value)])), None, Catalogue::BUILTIN).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(key), "{message}");
        assert!(message.contains(value), "{message}");
        assert!(message.contains("for example"), "{message}");
    }
}

#[test]
fn delivery_reads_from_the_pod_then_the_namespace() {
    let pod = map(&[(DELIVERY, "init-container")]);
    let ns = map(&[(DELIVERY, "image-volume")]);
    let read = |pod, ns| {
        Overrides::resolve(pod, ns, Catalogue::BUILTIN)
            .unwrap()
            .delivery
            .map(|d| (d.value, d.source))
    };
    assert_eq!(
        read(Some(&pod), Some(&ns)),
        Some((HelperDelivery::InitContainer, Source::Pod))
    );
    assert_eq!(
        read(None, Some(&ns)),
        Some((HelperDelivery::ImageVolume, Source::Namespace))
    );
    assert_eq!(read(None, None), None);
    let err = Overrides::resolve(
        Some(&map(&[(DELIVERY, "sidecar")])),
        None,
        Catalogue::BUILTIN,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "annotation drain.io/delivery=\"sidecar\" (on the pod) is invalid: expected auto, init-container, first-container or image-volume; use for example drain.io/delivery: \"auto\", \"first-container\", \"init-container\" or \"image-volume\""
    );
}

#[test]
fn opt_out_ignores_everything_else() {
    let pod = map(&[(INJECT, "false"), (DELAY, "garbage")]);
    let o = Overrides::resolve(Some(&pod), None, Catalogue::BUILTIN).unwrap();
    assert_eq!(o.opted_out, Some(Source::Pod));
}

#[test]
fn lists_parse() {
    let pod = map(&[
        (PROXIES, "nginx, envoy,"),
        (WAIT_IDLE, "8080,8443"),
        (NOTIFY, "http://127.0.0.1:8080/drain,http://[::1]:9090/"),
    ]);
    let o = Overrides::resolve(Some(&pod), None, Catalogue::BUILTIN).unwrap();
    assert_eq!(o.proxies.unwrap().value, ["nginx", "envoy"]);
    assert_eq!(o.wait_idle.unwrap().value, [8080, 8443]);
    assert_eq!(o.notify.unwrap().value.len(), 2);
}
