//! The hand-written JSON against serde_json's: strings, value shapes, planned pods.
use super::*;

fn serde_str(text: &str) -> Vec<u8> {
    serde_json::to_vec(text).unwrap()
}

/// Every byte below 0x80 alone and in every position of strings around the eight-byte
/// step, and non-ASCII text: the same bytes as serde_json.
#[test]
fn strings_are_escaped_as_serde_json_escapes_them() {
    for byte in 0..0x80u8 {
        for len in 1..=19 {
            for at in 0..len {
                let mut bytes = vec![b'a'; len];
                bytes[at] = byte;
                let text = String::from_utf8(bytes).unwrap();
                let mut out = Vec::new();
                write_str(&mut out, &text);
                assert_eq!(out, serde_str(&text), "{text:?}");
            }
        }
    }
    for text in [
        "",
        "drain.io/status",
        "é\u{2028}\u{7f}~/\"\\\u{1}ü日本語\n\r\t\u{8}\u{c}\u{1f}",
        "{\"v\":1,\"containers\":[{\"name\":\"nginx\",\"hook\":\"helper\"}]}",
    ] {
        let mut out = b"x".to_vec();
        write_str(&mut out, text);
        assert_eq!(out[1..], serde_str(text), "{text:?}");
    }
}

/// A value's JSON written as a JSON string in one pass: serde_json's `to_string` of its
/// `to_string`, whatever the strings in it hold.
#[test]
fn json_written_as_a_string_is_serde_json_twice() {
    let mut every_ascii = String::new();
    for byte in 0..0x80u8 {
        every_ascii.push(char::from(byte));
    }
    for value in [
        serde_json::json!({"v": 1, "name": every_ascii, "list": [null, true, -1.5, "é\u{2028}"]}),
        serde_json::json!("a\"b\\c/d"),
        serde_json::json!([]),
        serde_json::json!({"": {"\u{0}\u{1f}": "\u{7f}"}}),
    ] {
        let once = serde_json::to_string(&value).unwrap();
        let literal = StringLiteral::of_json(&value);
        assert_eq!(literal.0, serde_json::to_string(&once).unwrap());
        assert_eq!(
            serde_json::to_value(&literal).unwrap(),
            serde_json::json!(once)
        );
    }
}

/// Planned pods of every shape the patch builder writes (helper and native hooks, env,
/// existing lifecycles, mounts, volumes and init containers, image volumes, no metadata,
/// names that need escaping): the hand-written bytes are serde_json's.
#[test]
fn patches_are_the_bytes_serde_json_writes() {
    use crate::mutate::{PodContext, mutate_pod};
    use crate::settings::{HookMode, KubeVersion, Settings};
    use serde_json::json;

    let containers = json!([
        {"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 443}]},
        {"name": "app", "image": "ghcr.io/acme/shop:2.3"},
    ]);
    let existing = json!([
        {"name": "nginx\"/~\u{1}é", "image": "nginx:1.27",
         "lifecycle": {"preStop": {"exec": {"command": ["x"]}}},
         "volumeMounts": [{"name": "v", "mountPath": "/v"}],
         "env": [{"name": "A", "value": "1"}]},
        {"name": "app", "image": "app", "lifecycle": {}},
    ]);
    let annotation_sets = [
        json!({}),
        json!({"drain.io/env": "true"}),
        json!({"drain.io/hook": "native"}),
        json!({"drain.io/delivery": "image-volume"}),
        json!({"drain.io/delivery": "first-container"}),
        json!({"drain.io/delay": "0"}),
        json!({"drain.io/migrate": "SIGHUP", "drain.io/env": "true"}),
    ];
    let mut pods = Vec::new();
    for annotations in &annotation_sets {
        for spec in [
            json!({"containers": containers}),
            json!({"containers": existing, "volumes": [], "initContainers": [],
                   "terminationGracePeriodSeconds": 40}),
        ] {
            pods.push(
                json!({"metadata": {"name": "p", "annotations": annotations},
                             "spec": spec.clone()}),
            );
            pods.push(json!({"metadata": {"name": "p", "labels": {"a": "b"},
                                          "annotations": annotations},
                             "spec": spec.clone()}));
        }
    }
    pods.push(json!({"spec": {"containers": containers}}));
    pods.push(json!({"metadata": {}, "spec": {"containers": containers}}));

    let mut compared = 0;
    for mode in [
        HookMode::Auto,
        HookMode::Helper,
        HookMode::Native,
        HookMode::Sleep,
    ] {
        let settings = Settings {
            hook_mode: mode,
            ..Settings::default()
        };
        for (minor, image_volumes) in [(29, None), (34, None), (35, Some(true))] {
            let ctx = PodContext {
                settings: &settings,
                namespace_annotations: None,
                kube_version: Some(KubeVersion { major: 1, minor }),
                image_volume_nodes: image_volumes,
            };
            for pod in &pods {
                let Ok(mutation) = mutate_pod(pod, &ctx) else {
                    continue;
                };
                let mut written = Vec::new();
                mutation.patch.write_into(&mut written).unwrap();
                let reference = serde_json::to_vec(&mutation.patch).unwrap();
                if let Some(status) = &mutation.plan.status {
                    let text = serde_json::to_string(status).unwrap();
                    assert_eq!(
                        StringLiteral::of_json(status).0,
                        serde_json::to_string(&text).unwrap()
                    );
                }
                assert_eq!(
                    String::from_utf8(written).unwrap(),
                    String::from_utf8(reference).unwrap(),
                    "{pod}"
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 300, "{compared} patches compared");
}

/// The values no planned pod above produces (a plain exec command, an installer that is
/// not kept as JSON): the same bytes too.
#[test]
fn every_value_shape_is_written_as_serde_json_writes_it() {
    use super::super::path::pointer;
    use super::super::{PLANNED, PodOs, PodPatch};
    use crate::plan::EnvVar;

    let mut patch = PodPatch::default();
    let env = EnvVar {
        name: "DRAIN_DELAY_SECONDS",
        value: "1\"5".into(),
    };
    for value in [
        PatchValue::Number(-3),
        PatchValue::Number(i64::MAX),
        PatchValue::Number(i64::MIN),
        PatchValue::Number(0),
        PatchValue::Text("a\"b\\c\u{7}".into()),
        PatchValue::Handler(Handler::Sleep { seconds: 7 }),
        PatchValue::Handler(Handler::Exec {
            command: vec!["/x".into(), "--a=\"b\"".into()],
        }),
        PatchValue::Lifecycle(Lifecycle {
            pre_stop: Handler::Sleep { seconds: 0 },
            stop_signal: Some("SIGQUIT"),
        }),
        PatchValue::Os(PodOs { name: "linux" }),
        PatchValue::Env(env.clone()),
        PatchValue::Envs(vec![env.clone(), env]),
        PatchValue::Mount(Mount {
            name: "m\"".into(),
            mount_path: "/.drain",
            read_only: Some(false),
        }),
        PatchValue::Mounts([Mount {
            name: "m".into(),
            mount_path: "/.drain",
            read_only: None,
        }]),
        PatchValue::Annotations(StatusAnnotation {
            status: StringLiteral::of_json(&serde_json::json!({"v": 1, "n": "a\"\\\u{1}\n/é"})),
        }),
        PatchValue::Literal(StringLiteral::of_json(&["x\u{8}\u{c}\r\t\u{1f}"])),
        PatchValue::Labels(PLANNED),
        PatchValue::Metadata(Metadata {
            annotations: StatusAnnotation {
                status: StringLiteral::of_json("s"),
            },
            labels: PLANNED,
        }),
    ] {
        patch.add(pointer(&["a/b", "~c"]), value.clone());
        patch.replace(pointer(&["d"]), value);
    }
    let mut written = Vec::new();
    patch.write_into(&mut written).unwrap();
    assert_eq!(
        String::from_utf8(written).unwrap(),
        serde_json::to_string(&patch).unwrap()
    );
}
