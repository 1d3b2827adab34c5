//! `drain-e2e results DIR`, which assembles target/e2e/results.json from what scripts/e2e.sh
//! collected: on a sample run (tests/data/e2e/results-sample) it writes what the script's jq
//! wrote before it (expected-by-jq.json, made by by-jq.sh there), key for key and value for
//! value; what it writes is what `drain-e2e report` reads; a missing or bad input is named.
#![cfg(feature = "webhook")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_drain-e2e");
const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/e2e/results-sample");

/// The settings by-jq.sh used.
const SETTINGS: &[&str] = &[
    "--kubernetes-version",
    "v1.32.0",
    "--restarts",
    "2",
    "--lb-delay",
    "15",
    "--opted-in",
    "drain-e2e-on",
    "--plain",
    "drain-e2e-plain",
    "--plan",
    "planned: proxy helper (hold 10s..60s, quiet 3s) then SIGQUIT; app sleep 15s",
    "--proxy-image",
    "ghcr.io/drain-io/nginx-drain-e2e:0.1.0",
    "--app-image",
    "ghcr.io/drain-io/drain-e2e:0.1.0",
    "--hook",
    "auto",
    "--clients",
    "new,keepalive,h2,stream",
    "--delay",
    "",
    "--max-delay",
    "0",
    "--profile",
    "none",
    "--stream-linger",
    "0",
];

/// A copy of the sample run to write into.
fn sample_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(SAMPLE).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let path = dir.path().to_path_buf();
    (dir, path)
}

fn results(dir: &Path, settings: &[&str]) -> Output {
    Command::new(BIN)
        .arg("results")
        .arg(dir)
        .args(settings)
        .output()
        .unwrap()
}

fn read(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Equal as JSON values, numbers compared as numbers (jq prints 15 where serde writes 15.0).
fn assert_same(ours: &serde_json::Value, jq: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (ours, jq) {
        (Value::Object(a), Value::Object(b)) => {
            let (keys_a, keys_b): (Vec<_>, Vec<_>) = (a.keys().collect(), b.keys().collect());
            assert_eq!(keys_a, keys_b, "keys at {at}");
            for (key, value) in a {
                assert_same(value, &b[key], &format!("{at}/{key}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "length at {at}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_same(x, y, &format!("{at}/{i}"));
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            assert_eq!(a.as_f64(), b.as_f64(), "number at {at}");
        }
        _ => assert_eq!(ours, jq, "at {at}"),
    }
}

#[test]
fn results_json_is_what_the_scripts_jq_wrote() {
    let (_keep, dir) = sample_copy();
    let out = results(&dir, SETTINGS);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = read(&dir.join("results.json"));
    let jq = read(&dir.join("expected-by-jq.json"));
    assert_same(&ours, &jq, "");
    // Not vacuous: the sample has everything a run collects.
    assert_eq!(
        ours["namespaces"][0]["rollouts"].as_array().unwrap().len(),
        2
    );
    assert_eq!(ours["create_to_ready_seconds"]["plain"][1], 2.0);
    assert!(
        !ours["namespaces"][1]["holds"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The report reads it.
    let report = Command::new(BIN)
        .arg("report")
        .arg(dir.join("results.json"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(
        text.contains("kubernetes v1.32.0, 2 rolling restarts, load balancer 15 s late"),
        "{text}"
    );
    assert!(
        text.contains("PASS: the opted-in namespace lost 0"),
        "{text}"
    );
}

#[test]
fn a_missing_or_bad_input_is_named() {
    let (_keep, dir) = sample_copy();
    std::fs::remove_file(dir.join("holds-drain-e2e-plain.json")).unwrap();
    let out = results(&dir, SETTINGS);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read") && stderr.contains("holds-drain-e2e-plain.json"),
        "{stderr}"
    );
    assert!(!dir.join("results.json").exists());

    let (_keep, dir) = sample_copy();
    std::fs::write(dir.join("ready-drain-e2e-on.txt"), "1764620100.1\n").unwrap();
    let out = results(&dir, SETTINGS);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ready-drain-e2e-on.txt: line 1: ")
            && stderr.contains("is not `START END`"),
        "{stderr}"
    );
}

/// The flags scripts/e2e.sh passes at the end of a run are the ones `drain-e2e results` takes
/// (a mismatch would fail only after a whole run on a cluster), and none it requires is left
/// out.
#[test]
fn the_script_passes_what_results_takes() {
    let script =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/e2e.sh")).unwrap();
    let start = script
        .find("\"$report_bin\" results ")
        .expect("the script runs drain-e2e results");
    let call = &script[start..start + script[start..].find("|| die").unwrap()];
    let passed: Vec<&str> = call
        .split_whitespace()
        .filter(|word| word.starts_with("--"))
        .collect();
    let taken: Vec<&str> = SETTINGS
        .iter()
        .copied()
        .filter(|word| word.starts_with("--"))
        .collect();
    let (mut passed_sorted, mut taken_sorted) = (passed.clone(), taken.clone());
    passed_sorted.sort();
    taken_sorted.sort();
    assert_eq!(passed_sorted, taken_sorted, "{call}");
    let help = Command::new(BIN)
        .args(["results", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in passed {
        assert!(help.contains(&format!("{flag} ")), "{flag} not in:\n{help}");
    }
}

/// A `GET /drains` answer of the leader with the demo's proxy drains ending at `ends`.
fn leader_answer(ends: &[f64]) -> String {
    let recent: Vec<serde_json::Value> = ends
        .iter()
        .map(|end| {
            serde_json::json!({"role": "proxy", "floor": 10.0, "end": end, "why": "quiet",
                "lastArrival": 12.0, "afterFloor": 2, "migratedAt": null, "signalAt": end,
                "exit": 0})
        })
        .collect();
    serde_json::json!({"leader": true, "identity": "a", "holder": "a", "workloads": [
        {"namespace": "drain-e2e-on", "kind": "Deployment", "name": "demo",
         "drains": ends.len(), "capHits": 0, "lagMedianSeconds": 12.0, "lagMaxSeconds": 12.0,
         "recent": recent}]})
    .to_string()
}

/// results.json carries the comparison of the observed drains with the holds (the sample's
/// opted-in pods held until 16.2 s and 18.0 s), and the verdict fails on a disagreement; the
/// observer off is a finding, not a failure.
#[test]
fn the_observed_drains_are_checked_against_the_holds() {
    let follower = r#"{"leader":false,"identity":"b","holder":"a","workloads":[]}"#;
    let off = r#"{"leader":false,"identity":null,"holder":null,"workloads":[]}"#;
    let cases = [
        (
            format!("{follower}\n{}\n", leader_answer(&[18.4, 16.2])),
            "agree",
            true,
        ),
        (leader_answer(&[16.2]), "disagree", false),
        (leader_answer(&[16.2, 19.5]), "disagree", false),
        (format!("{follower}\n{follower}\n"), "unavailable", false),
        (format!("{off}\n"), "observer-off", true),
    ];
    for (answers, outcome, pass) in cases {
        let (_keep, dir) = sample_copy();
        std::fs::write(dir.join("drains.jsonl"), &answers).unwrap();
        let out = results(&dir, SETTINGS);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let written = read(&dir.join("results.json"));
        let on = &written["namespaces"][0];
        assert_eq!(on["observed"]["outcome"], outcome, "{answers}: {on:#}");
        assert_eq!(on["observed"]["expected"], 2);
        assert!(written["namespaces"][1].get("observed").is_none());
        let report = Command::new(BIN)
            .arg("report")
            .arg(dir.join("results.json"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&report.stdout);
        assert_eq!(report.status.success(), pass, "{answers}:\n{text}");
        assert!(text.contains("observed by the webhook: "), "{text}");
        if !pass {
            assert!(
                text.contains("FAIL: the opted-in namespace lost 0"),
                "{text}"
            );
        }
    }
}
