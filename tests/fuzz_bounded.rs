//! The fuzz targets' invariants (tests/common/invariants.rs), run a bounded number of times on
//! every `make test`: random bytes and real AdmissionReviews (tests/data/reviews) mutated byte
//! by byte and field by field go through `Reviewer::review`; real pods (tests/fixtures/pods)
//! mutated field by field go through `mutate_pod`. The cargo-fuzz targets in `fuzz/` run the
//! same checks without a bound (docs/operations.md, "Fuzzing").
//!
//! Generated valid pods are covered by tests/properties.rs, which calls the same
//! `check_mutation`.

mod common;

use std::path::Path;

use common::invariants::{self, ReviewKind, check_drain_record, check_mutation, check_review};
use drain_webhook::admission::Reviewer;
use drain_webhook::mutate::PodContext;
use drain_webhook::settings::{KubeVersion, Settings};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

fn reviewer(kube: Option<KubeVersion>) -> Reviewer {
    Reviewer {
        kube_version: kube,
        ..Reviewer::for_tests()
    }
}

fn files(dir: &str, extension: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    found.sort();
    assert!(
        !found.is_empty(),
        "no .{extension} files in {}",
        dir.display()
    );
    found
}

fn reviews() -> Vec<(String, Vec<u8>)> {
    files("tests/data/reviews", "json")
}

fn pods() -> Vec<(String, Value)> {
    files("tests/fixtures/pods", "yaml")
        .into_iter()
        .map(|(name, bytes)| {
            let text = String::from_utf8(bytes).unwrap();
            (name, serde_saphyr::from_str(&text).unwrap())
        })
        .collect()
}

fn version_strategy() -> impl Strategy<Value = Option<KubeVersion>> {
    prop::option::of(prop::sample::select(vec!["1.28", "1.30", "1.34"]))
        .prop_map(|v| v.map(|v| v.parse().unwrap()))
}

// ---------------------------------------------------------------------------------------------
// Byte-level mutations

#[derive(Debug, Clone)]
enum ByteEdit {
    Truncate(Index),
    Flip(Index, u8),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    Duplicate(Index, usize),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        any::<Index>().prop_map(ByteEdit::Truncate),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Flip(i, b)),
        (
            any::<Index>(),
            prop_oneof![
                prop::collection::vec(any::<u8>(), 1..8),
                prop::sample::select(vec![
                    b"{".to_vec(),
                    b"}".to_vec(),
                    b"\"".to_vec(),
                    b"null".to_vec(),
                    b"[[[[".to_vec(),
                    b"\\u0000".to_vec(),
                    b"1e999".to_vec(),
                    b",".to_vec(),
                    "é".as_bytes().to_vec(),
                    vec![0xff, 0xfe],
                ]),
            ]
        )
            .prop_map(|(i, b)| ByteEdit::Insert(i, b)),
        (any::<Index>(), 1usize..64).prop_map(|(i, n)| ByteEdit::Remove(i, n)),
        (any::<Index>(), 1usize..64).prop_map(|(i, n)| ByteEdit::Duplicate(i, n)),
    ]
}

fn apply_bytes(mut bytes: Vec<u8>, edits: &[ByteEdit]) -> Vec<u8> {
    for edit in edits {
        if bytes.is_empty() {
            break;
        }
        match edit {
            ByteEdit::Truncate(i) => bytes.truncate(i.index(bytes.len())),
            ByteEdit::Flip(i, b) => {
                let at = i.index(bytes.len());
                bytes[at] ^= b | 1;
            }
            ByteEdit::Insert(i, b) => {
                let at = i.index(bytes.len() + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            ByteEdit::Remove(i, n) => {
                let at = i.index(bytes.len());
                let end = (at + n).min(bytes.len());
                bytes.drain(at..end);
            }
            ByteEdit::Duplicate(i, n) => {
                let at = i.index(bytes.len());
                let end = (at + n).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                bytes.splice(end..end, copy);
            }
        }
    }
    bytes
}

// ---------------------------------------------------------------------------------------------
// Field-level mutations of JSON documents

/// Keys worth inserting: the ones the planner and the review read.
const KEYS: &[&str] = &[
    "drain.io/delay",
    "drain.io/stagger",
    "drain.io/shutdown-budget",
    "drain.io/quiet",
    "drain.io/max-delay",
    "periodSeconds",
    "readinessProbe",
    "drain.io/hook",
    "drain.io/proxies",
    "drain.io/exclude",
    "drain.io/notify",
    "drain.io/wait-idle",
    "drain.io/inject",
    "drain.io/delivery",
    "drain.io/status",
    "kubernetes.io/config.mirror",
    "terminationGracePeriodSeconds",
    "restartPolicy",
    "lifecycle",
    "preStop",
    "sleep",
    "seconds",
    "exec",
    "command",
    "httpGet",
    "port",
    "initContainers",
    "ephemeralContainers",
    "volumes",
    "volumeMounts",
    "mountPath",
    "os",
    "shareProcessNamespace",
    "name",
    "image",
    "ports",
    "containerPort",
    "resources",
    "requests",
    "limits",
    "cpu",
    "memory",
    "ephemeral-storage",
    "uid",
    "operation",
    "kind",
    "subResource",
    "namespace",
    "object",
];

fn junk() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop::sample::select(vec![
            0i64,
            -1,
            1,
            30,
            3600,
            3601,
            i64::from(i32::MAX),
            i64::MAX,
            i64::MIN
        ])
        .prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop::sample::select(vec![
            "",
            "10s",
            "0",
            "1m30s",
            "86401s",
            "99999999999h",
            "-5",
            "1.5",
            "auto",
            "sleep",
            "helper",
            "false",
            "true",
            "nginx",
            "nginx:1.27",
            "app,nginx,nope",
            "c0,c0",
            "http://127.0.0.1:8080/drain",
            "http://[::1]:1/x,http://10.0.0.1/",
            "8080,8081,99999",
            "Always",
            "CREATE",
            "UPDATE",
            "Pod",
            "drain-helper",
            "/.drain",
            "{\"v\":1}",
            "é~/~0~1",
            "100m",
            "1000m",
            "1",
            "64Mi",
            "1e3",
            "init-container",
            "first-container",
            "image-volume",
        ])
        .prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..3).prop_map(
                |pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            ),
        ]
    })
}

#[derive(Debug, Clone)]
enum FieldEdit {
    /// Replace the value at a path.
    Replace(Index, Value),
    /// Remove the value at a path.
    Remove(Index),
    /// Set a key on an object at a path.
    Insert(Index, &'static str, Value),
    /// Copy an array element (duplicate container names, volumes, ...).
    DuplicateElement(Index),
}

fn field_edit() -> impl Strategy<Value = FieldEdit> {
    prop_oneof![
        2 => (any::<Index>(), junk()).prop_map(|(i, v)| FieldEdit::Replace(i, v)),
        1 => any::<Index>().prop_map(FieldEdit::Remove),
        3 => (any::<Index>(), prop::sample::select(KEYS.to_vec()), junk())
            .prop_map(|(i, k, v)| FieldEdit::Insert(i, k, v)),
        1 => any::<Index>().prop_map(FieldEdit::DuplicateElement),
    ]
}

/// Every JSON pointer in `value` (the root is "").
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let token = key.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{at}/{token}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn apply_fields(mut value: Value, edits: &[FieldEdit]) -> Value {
    for edit in edits {
        let mut all = Vec::new();
        pointers(&value, String::new(), &mut all);
        let containers: Vec<&String> = all
            .iter()
            .filter(|p| matches!(value.pointer(p), Some(Value::Object(_))))
            .collect();
        let arrays: Vec<&String> = all
            .iter()
            .filter(|p| matches!(value.pointer(p), Some(Value::Array(a)) if !a.is_empty()))
            .collect();
        match edit {
            FieldEdit::Replace(i, new) => {
                let at = all[i.index(all.len())].clone();
                if let Some(slot) = value.pointer_mut(&at) {
                    *slot = new.clone();
                }
            }
            FieldEdit::Remove(i) => {
                let at = all[i.index(all.len())].clone();
                if let Some((parent, last)) = at.rsplit_once('/') {
                    let key = last.replace("~1", "/").replace("~0", "~");
                    match value.pointer_mut(parent) {
                        Some(Value::Object(map)) => {
                            map.remove(&key);
                        }
                        Some(Value::Array(items)) => {
                            if let Ok(n) = key.parse::<usize>()
                                && n < items.len()
                            {
                                items.remove(n);
                            }
                        }
                        _ => {}
                    }
                }
            }
            FieldEdit::Insert(i, key, new) => {
                if containers.is_empty() {
                    continue;
                }
                let at = containers[i.index(containers.len())].clone();
                if let Some(Value::Object(map)) = value.pointer_mut(&at) {
                    map.insert((*key).to_string(), new.clone());
                }
            }
            FieldEdit::DuplicateElement(i) => {
                if arrays.is_empty() {
                    continue;
                }
                let at = arrays[i.index(arrays.len())].clone();
                if let Some(Value::Array(items)) = value.pointer_mut(&at) {
                    let copy = items[0].clone();
                    items.push(copy);
                }
            }
        }
    }
    value
}

/// A record line as the helper writes it, from arbitrary field values (some out of range).
fn drain_record_line() -> impl Strategy<Value = String> {
    // Mostly within the day a record may span, sometimes past it.
    let time = || (0u64..90_000_000).prop_map(|ms| format!("{}.{:03}", ms / 1000, ms % 1000));
    let seconds = move || prop_oneof![Just("null".to_string()), time()];
    (
        prop::sample::select(vec!["app", "proxy", "db"]),
        prop::sample::select(vec!["quiet", "cap", "fixed", "follow", ""]),
        (time(), time(), seconds(), seconds(), seconds()),
        any::<u64>(),
        0u64..300,
    )
        .prop_map(|(role, why, (floor, end, last, migrated, signal), after, exit)| {
            format!(r#"{{"v":1,"role":"{role}","floor":{floor},"end":{end},"why":"{why}","lastArrival":{last},"afterFloor":{after},"migratedAt":{migrated},"signalAt":{signal},"exit":{exit}}}"#)
        })
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn termination_messages_are_read_within_the_invariants(
        user in "[ -~\n]{0,64}",
        record in drain_record_line(),
        edits in prop::collection::vec(byte_edit(), 0..4),
        tail in prop::collection::vec(any::<u8>(), 0..8),
    ) {
        let mut message = format!("{user}\n{record}").into_bytes();
        message = apply_bytes(message, &edits);
        message.extend(tail);
        check_drain_record(&message).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn random_bytes_are_read_as_termination_messages_within_the_invariants(
        bytes in prop::collection::vec(any::<u8>(), 0..(drain_webhook::drain_record::MAX_MESSAGE_BYTES + 64)),
    ) {
        check_drain_record(&bytes).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn random_bytes_are_answered_within_the_invariants(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let kind = check_review(&reviewer(None), &body).map_err(TestCaseError::fail)?;
        prop_assert_eq!(kind, ReviewKind::Invalid);
    }

    #[test]
    fn reviews_mutated_byte_by_byte_are_answered_within_the_invariants(
        which in any::<Index>(),
        edits in prop::collection::vec(byte_edit(), 1..4),
        kube in version_strategy(),
    ) {
        let all = reviews();
        let (_, original) = &all[which.index(all.len())];
        let body = apply_bytes(original.clone(), &edits);
        check_review(&reviewer(kube), &body).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn reviews_mutated_field_by_field_are_answered_within_the_invariants(
        which in any::<Index>(),
        edits in prop::collection::vec(field_edit(), 1..5),
        kube in version_strategy(),
    ) {
        let all = reviews();
        let (_, original) = &all[which.index(all.len())];
        let review = apply_fields(serde_json::from_slice(original).unwrap(), &edits);
        let body = serde_json::to_vec(&review).unwrap();
        check_review(&reviewer(kube), &body).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn pods_mutated_field_by_field_keep_the_mutation_invariants(
        which in any::<Index>(),
        edits in prop::collection::vec(field_edit(), 1..5),
        kube in version_strategy(),
        nodes in prop::option::of(any::<bool>()),
    ) {
        let all = pods();
        let (_, original) = &all[which.index(all.len())];
        let pod = apply_fields(original.clone(), &edits);
        let settings = Settings::default();
        let ctx = PodContext { settings: &settings, namespace_annotations: None, kube_version: kube, image_volume_nodes: nodes };
        check_mutation(&pod, &ctx).map_err(TestCaseError::fail)?;
    }
}

/// Every real review and every real pod, unmutated, passes the same checks (so the mutated
/// runs start from inputs that hold).
#[test]
fn the_unmutated_corpus_keeps_the_invariants() {
    let mut kinds = Vec::new();
    for (name, body) in reviews() {
        let kind = check_review(&reviewer(None), &body).unwrap_or_else(|e| panic!("{name}: {e}"));
        kinds.push(kind);
    }
    assert!(kinds.contains(&ReviewKind::Patched));
    assert!(kinds.contains(&ReviewKind::Denied));
    assert!(kinds.contains(&ReviewKind::Allowed));
    let settings = Settings::default();
    // The fixtures hold every QoS class, so the field edits start from each (`check_qos`).
    let classes: std::collections::BTreeSet<&str> = pods()
        .iter()
        .map(|(_, pod)| {
            invariants::qos_class(&serde_json::from_value(pod["spec"].clone()).unwrap())
        })
        .collect();
    assert_eq!(
        classes.into_iter().collect::<Vec<_>>(),
        ["BestEffort", "Burstable", "Guaranteed"]
    );
    for (name, pod) in pods() {
        for (kube, nodes) in [
            (None, None),
            (Some("1.28".parse().unwrap()), None),
            (Some("1.34".parse().unwrap()), None),
            (Some("1.35".parse().unwrap()), Some(true)),
        ] {
            let ctx = PodContext {
                settings: &settings,
                namespace_annotations: None,
                kube_version: kube,
                image_volume_nodes: nodes,
            };
            check_mutation(&pod, &ctx).unwrap_or_else(|e| panic!("{name} {kube:?}: {e}"));
        }
    }
    // A pod that is not a Pod may be an internal error, never a panic.
    let ctx = PodContext {
        settings: &settings,
        namespace_annotations: None,
        kube_version: None,
        image_volume_nodes: None,
    };
    check_mutation(&json!({"spec": {"containers": "x"}}), &ctx).unwrap();
}
