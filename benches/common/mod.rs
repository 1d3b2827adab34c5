//! The pod shapes `make bench` measures, shared by `benches/plan.rs` (the planner alone) and
//! `benches/http.rs` (the server against the baseline), so both talk about the same bytes.
//!
//! - `small`: one container (tests/fixtures/pods/single-app.yaml);
//! - `seed`: nginx in front of the app, the seed case (tests/fixtures/pods/seed-nginx-app.yaml);
//! - `wide`: 40 containers with 32 env vars each, about 90 KB of JSON, generated here
//!   deterministically (no randomness, no clock).
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::{Value, json};

/// One pod shape: its name and the pod as the API server sends it (JSON).
pub struct Shape {
    pub name: &'static str,
    pub pod: Value,
}

impl Shape {
    /// Size of the pod's JSON, the unit of the per-byte cost.
    pub fn pod_bytes(&self) -> usize {
        serde_json::to_vec(&self.pod).map_or(0, |bytes| bytes.len())
    }
}

/// All shapes, smallest first.
pub fn shapes() -> Vec<Shape> {
    vec![
        Shape {
            name: "small",
            pod: fixture("single-app.yaml"),
        },
        Shape {
            name: "seed",
            pod: fixture("seed-nginx-app.yaml"),
        },
        Shape {
            name: "wide",
            pod: wide_pod(40, 32),
        },
    ]
}

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pods")
        .join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// A pod with `containers` containers (an nginx proxy first, then apps), each with `env`
/// environment variables, ports and resources: the kind of pod a big sidecar-heavy
/// workload sends. 40 x 32 is about 90 KB.
pub fn wide_pod(containers: usize, env: usize) -> Value {
    let containers: Vec<Value> = (0..containers)
        .map(|c| {
            let (name, image) = if c == 0 {
                ("proxy".to_string(), "nginx:1.27".to_string())
            } else {
                (
                    format!("service-{c:02}"),
                    format!("registry.example/platform/service-{c:02}:3.{c}.0"),
                )
            };
            let env: Vec<Value> = (0..env)
                .map(|e| {
                    json!({
                        "name": format!("SERVICE_{c:02}_SETTING_{e:02}"),
                        "value": format!("value-{c:02}-{e:02}-abcdefgh"),
                    })
                })
                .collect();
            json!({
                "name": name,
                "image": image,
                "ports": [{"containerPort": 8000 + c, "name": format!("http-{c:02}")}],
                "env": env,
                "resources": {
                    "requests": {"cpu": "10m", "memory": "32Mi"},
                    "limits": {"memory": "64Mi"},
                },
            })
        })
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "wide",
            "namespace": "platform",
            "labels": {"app": "wide"},
        },
        "spec": {"containers": containers},
    })
}

/// An `admission.k8s.io/v1` AdmissionReview for the CREATE of `pod`, shaped like the API
/// server's (tests/data/reviews/pod-create-nginx-app.json).
pub fn review(pod: &Value) -> Vec<u8> {
    let name = pod["metadata"]["name"].as_str().unwrap_or("pod");
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let mut object = pod.clone();
    object["metadata"]["namespace"] = namespace.into();
    let gvk = json!({"group": "", "version": "v1", "kind": "Pod"});
    let gvr = json!({"group": "", "version": "v1", "resource": "pods"});
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "7f0b2c1e-0b0b-4d5e-9a10-00000000be4c",
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": name,
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "groups": ["system:serviceaccounts", "system:authenticated"],
            },
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    });
    serde_json::to_vec(&review).expect("a review serializes")
}
