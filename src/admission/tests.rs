//! The reviewer on fixture reviews: answers, outcomes, the one-pass and diagnosing reads.
use super::wire::{ReviewOnePass, parse_diagnosing};
use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/reviews/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

fn response(answer: &Answer) -> Value {
    let review: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(review["apiVersion"], API_VERSION);
    assert_eq!(review["kind"], KIND);
    review["response"].clone()
}

#[test]
fn skips_what_is_not_a_pod_create() {
    for (file, uid) in [
        ("pod-update.json", "7f0b2c1e-0003-4d5e-9a10-000000000003"),
        ("pod-delete.json", "7f0b2c1e-0004-4d5e-9a10-000000000004"),
        (
            "pod-create-own-namespace.json",
            "7f0b2c1e-0005-4d5e-9a10-000000000005",
        ),
        (
            "pod-create-mirror.json",
            "7f0b2c1e-0006-4d5e-9a10-000000000006",
        ),
        (
            "configmap-create.json",
            "7f0b2c1e-0008-4d5e-9a10-000000000008",
        ),
        (
            "pod-create-subresource.json",
            "7f0b2c1e-0009-4d5e-9a10-000000000009",
        ),
    ] {
        let answer = Reviewer::for_tests().review(&fixture(file));
        assert_eq!(answer.status, 200, "{file}");
        assert_eq!(answer.outcome, ReviewOutcome::Skipped, "{file}");
        let response = response(&answer);
        assert_eq!(response["uid"], uid, "{file}");
        assert_eq!(response["allowed"], true, "{file}");
        assert!(response.get("patch").is_none(), "{file}");
    }
}

#[test]
fn malformed_bodies_are_invalid_with_a_reason() {
    let good = fixture("pod-create-nginx-app.json");
    let mut wrong_version: Value = serde_json::from_slice(&good).unwrap();
    wrong_version["apiVersion"] = "admission.k8s.io/v1beta1".into();
    let mut wrong_types: Value = serde_json::from_slice(&good).unwrap();
    wrong_types["request"]["uid"] = 42.into();
    let mut no_object: Value = serde_json::from_slice(&good).unwrap();
    no_object["request"]["object"] = Value::Null;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (Vec::new(), "empty"),
        (b"   ".to_vec(), "empty"),
        (good[..good.len() / 2].to_vec(), "not JSON"),
        (b"<xml/>".to_vec(), "not JSON"),
        (b"[1,2]".to_vec(), "not a JSON object"),
        (b"\xff\xfe".to_vec(), "not JSON"),
        (serde_json::to_vec(&wrong_version).unwrap(), "apiVersion"),
        (
            serde_json::to_vec(&wrong_types).unwrap(),
            "AdmissionRequest",
        ),
        (serde_json::to_vec(&no_object).unwrap(), "without an object"),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
            "no request",
        ),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{}}"#.to_vec(),
            "kind",
        ),
    ];
    for (body, expected) in cases {
        let answer = Reviewer::for_tests().review(&body);
        assert_eq!(answer.status, 400, "{expected}");
        assert_eq!(answer.outcome, ReviewOutcome::Invalid);
        let text = String::from_utf8(answer.body).unwrap();
        assert!(text.contains(expected), "{text} should mention {expected}");
    }
}

#[test]
fn long_reasons_are_shortened() {
    let long = "é".repeat(500);
    let short = shorten(&long);
    assert!(short.len() <= MAX_REASON_LEN + 3);
    assert!(short.ends_with("..."));
}

#[test]
fn a_bad_annotation_is_denied_naming_it() {
    let answer = Reviewer::for_tests().review(&fixture("pod-create-bad-delay.json"));
    assert_eq!(answer.status, 200);
    assert_eq!(answer.outcome, ReviewOutcome::Denied);
    let response = response(&answer);
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 400);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.contains("drain.io/delay"), "{message}");
}

#[test]
fn the_seed_pod_is_patched() {
    let answer = Reviewer::for_tests().review(&fixture("pod-create-nginx-app.json"));
    assert_eq!(answer.status, 200);
    assert_eq!(answer.outcome, ReviewOutcome::Mutated);
    assert!(answer.patch_operations > 0);
    let response = response(&answer);
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    // Base64, as the API server reads a Go []byte, holding the JSONPatch.
    let encoded = response["patch"]
        .as_str()
        .expect("patch is a base64 string");
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded)
        .expect("valid base64");
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("a JSONPatch");
    assert_eq!(patch.0.len(), answer.patch_operations);
}

/// The answer is written by hand; it must be the JSON serde would write for the same
/// fields, for every kind of answer (uid with characters to escape, denial, warnings).
#[test]
fn the_hand_written_answer_is_the_json_of_its_fields() {
    let patch = br#"[{"op":"add","path":"/spec/x","value":1}]"#.to_vec();
    let cases = [
        ReviewResponse {
            uid: "plain-uid",
            allowed: true,
            status: None,
            patch: None,
            warnings: Vec::new(),
        },
        ReviewResponse {
            uid: "quote\"back\\slash\u{1}",
            allowed: true,
            status: None,
            patch: Some(patch.clone()),
            warnings: vec!["first \"warning\"".into(), "second".into()],
        },
        ReviewResponse {
            uid: "denied",
            allowed: false,
            status: Some(DenialStatus {
                status: "Failure",
                code: 400,
                reason: "BadRequest",
                message: "drain.io/delay: \"ten\" is not a duration".into(),
            }),
            patch: None,
            warnings: Vec::new(),
        },
    ];
    for case in cases {
        let written: Value =
            serde_json::from_slice(&case.to_review_json().unwrap()).expect("the answer is JSON");
        let mut response = serde_json::json!({"uid": case.uid, "allowed": case.allowed});
        if let Some(status) = &case.status {
            response["status"] = serde_json::to_value(status).unwrap();
        }
        if let Some(patch) = &case.patch {
            response["patchType"] = "JSONPatch".into();
            response["patch"] =
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, patch).into();
        }
        if !case.warnings.is_empty() {
            response["warnings"] = serde_json::to_value(&case.warnings).unwrap();
        }
        let expected = serde_json::json!({
            "apiVersion": API_VERSION,
            "kind": KIND,
            "response": response,
        });
        assert_eq!(written, expected);
    }
}

/// A request as the planner sees it: its fields, and its object read as a pod whether the read
/// typed it already or left it raw.
fn described(request: RequestIn<'_>) -> String {
    let pod = request.pod.clone().or_else(|| {
        let object = request.object.map(RawValue::get).filter(|o| *o != "null");
        object.and_then(|object| read_pod(object).ok().map(Box::new))
    });
    let RequestIn {
        uid,
        kind,
        sub_resource,
        name,
        namespace,
        operation,
        dry_run,
        ..
    } = request;
    format!(
        "{uid} {kind:?} {sub_resource:?} {name} {namespace:?} {operation:?} {dry_run:?} {pod:?}"
    )
}

/// The one-pass read and the step-by-step read give the same request for every review
/// fixture, and the step-by-step read still takes a valid envelope the fast one does not.
#[test]
fn the_one_pass_read_agrees_with_the_diagnosing_read() {
    let dir = format!("{}/tests/data/reviews", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(&dir).unwrap() {
        let body = std::fs::read(entry.unwrap().path()).unwrap();
        let fast = parse(&body).map(described).map_err(|e| e.to_string());
        let slow = parse_diagnosing(&body)
            .map(described)
            .map_err(|e| e.to_string());
        assert_eq!(fast, slow);
    }
    // A Pod CREATE's object is read as a pod with the body, not skipped and read again.
    let body = fixture("pod-create-nginx-app.json");
    let seed = parse(&body).unwrap();
    assert!(seed.pod.is_some() && seed.object.is_none());
    let escaped = br#"{"apiVersion":"admission.k8s.io\/v1","kind":"AdmissionReview",
        "request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},
        "operation":"CREATE","object":{"metadata":{"name":"p"}}}}"#;
    assert!(serde_json::from_slice::<ReviewOnePass<'_>>(escaped).is_err());
    let request = parse(escaped).expect("an escaped apiVersion is still v1");
    assert_eq!(request.uid, "u1");
}

#[test]
fn a_pod_the_planner_cannot_read_is_an_internal_error() {
    let mut review: Value = serde_json::from_slice(&fixture("pod-create-nginx-app.json")).unwrap();
    review["request"]["object"]["spec"]["containers"] = "not a list".into();
    let answer = Reviewer::for_tests().review(&serde_json::to_vec(&review).unwrap());
    assert_eq!(answer.status, 500);
    assert_eq!(answer.outcome, ReviewOutcome::Error);
    assert_eq!(answer.operation, Some(Operation::Create));
    assert!(!String::from_utf8_lossy(&answer.body).contains("not a list"));
}

/// What a thread keeps from one review for the next (the patch buffer, the checked helper
/// commands) never shows in an answer: each review answers as on a fresh thread, whatever the
/// thread reviewed before.
#[test]
fn what_a_thread_keeps_never_shows_in_an_answer() {
    let seed = fixture("pod-create-nginx-app.json");
    let mut other: Value = serde_json::from_slice(&seed).unwrap();
    let object = &mut other["request"]["object"];
    object["metadata"]["annotations"] = serde_json::json!({"drain.io/delay": "25s"});
    object["spec"]["containers"][1]["image"] = "nginx:1.27".into();
    let other = serde_json::to_vec(&other).unwrap();
    let on_a_fresh_thread = |body: &Vec<u8>| {
        let body = body.clone();
        std::thread::spawn(move || Reviewer::for_tests().review(&body).body)
            .join()
            .unwrap()
    };
    let (seed_fresh, other_fresh) = (on_a_fresh_thread(&seed), on_a_fresh_thread(&other));
    assert_ne!(
        seed_fresh, other_fresh,
        "the two pods are planned differently"
    );
    let reviewer = Reviewer::for_tests();
    for _ in 0..3 {
        assert_eq!(reviewer.review(&seed).body, seed_fresh);
        assert_eq!(reviewer.review(&other).body, other_fresh);
    }
}
