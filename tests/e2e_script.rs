//! scripts/e2e.sh without a cluster: it parses, shellcheck (installed by `make deps`) finds
//! nothing in it or in the image scripts, bad settings are refused before the cluster is
//! touched, and what it created is cleaned up when it fails or is interrupted. kubectl and
//! helm are stand-in scripts that log their arguments.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const PATIENCE: Duration = Duration::from_secs(30);

fn script() -> PathBuf {
    Path::new(ROOT).join("scripts/e2e.sh")
}

#[test]
fn the_scripts_parse_and_shellcheck_finds_nothing() {
    let status = Command::new("bash")
        .arg("-n")
        .arg(script())
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new("shellcheck")
        .args([
            "scripts/e2e.sh",
            "scripts/build-images.sh",
            "scripts/check-images.sh",
        ])
        .current_dir(ROOT)
        .output()
        .expect("shellcheck (make deps installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A fake cluster: kubectl and helm that log each call to `log`; nothing exists in it.
struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    fn new(helm_install: &str) -> Fake {
        Self::with_check(helm_install, "exit 0")
    }

    /// `check` is the body of the fake drain-webhook binary (after it logs its arguments).
    fn with_check(helm_install: &str, check: &str) -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls.log");
        let write = |name: &str, body: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, body).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        write(
            "kubectl",
            format!(
                r#"#!/bin/sh
echo "kubectl $*" >> {log}
case "$1" in
version) echo '{{"serverVersion":{{"gitVersion":"v1.32.0"}}}}' ;;
get) exit 1 ;;
esac
exit 0
"#,
                log = log.display()
            ),
        );
        write(
            "helm",
            format!(
                r#"#!/bin/sh
echo "helm $*" >> {log}
case "$1" in
status) exit 1 ;;
install) {helm_install} ;;
esac
exit 0
"#,
                log = log.display()
            ),
        );
        write("drain-e2e", "#!/bin/sh\nexit 0\n".into());
        write(
            "drain-webhook",
            format!(
                "#!/bin/sh\necho \"drain-webhook $*\" >> {log}\n{check}\n",
                log = log.display()
            ),
        );
        Fake { dir }
    }

    fn start(&self, env: &[(&str, &str)]) -> Child {
        self.start_with(&[], env)
    }

    fn start_with(&self, args: &[&str], env: &[(&str, &str)]) -> Child {
        let d = self.dir.path();
        let mut command = Command::new("bash");
        command
            .arg(script())
            .args(args)
            .env("KUBECTL", d.join("kubectl"))
            .env("HELM", d.join("helm"))
            .env("E2E_BIN", d.join("drain-e2e"))
            .env("WEBHOOK_BIN", d.join("drain-webhook"))
            .env("E2E_OUT", d.join("out"))
            .env("WEBHOOK_IMAGE", "ghcr.io/drain-io/drain-webhook:0.1.0")
            .env("HELPER_IMAGE", "ghcr.io/drain-io/drain-helper:0.1.0")
            .env("E2E_IMAGE", "ghcr.io/drain-io/drain-e2e:0.1.0")
            .env("E2E_NGINX_IMAGE", "ghcr.io/drain-io/nginx-drain-e2e:0.1.0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        command.spawn().unwrap()
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("calls.log")).unwrap_or_default()
    }
}

fn finish(child: Child) -> (i32, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_settings_are_refused_before_the_cluster_is_touched() {
    let fake = Fake::new("exit 0");
    for (key, value, message) in [
        ("E2E_LB_DELAY", "5s", "E2E_LB_DELAY=5s: give whole seconds"),
        (
            "E2E_RESTARTS",
            "0",
            "E2E_RESTARTS=0: give a whole number >= 1",
        ),
        ("E2E_PULL_POLICY", "Always", "use IfNotPresent or Never"),
        (
            "E2E_HOOK",
            "native",
            "E2E_HOOK=native: use auto, sleep or helper",
        ),
        (
            "E2E_CLIENTS",
            "new,grpc",
            "E2E_CLIENTS=new,grpc: give a comma list of new, keepalive, h2, stream",
        ),
        ("E2E_STREAMS", "0", "E2E_STREAMS=0: give streams per path"),
        ("E2E_DELAY", "2s", "E2E_DELAY=2s: give whole seconds"),
        (
            "E2E_MAX_DELAY",
            "1m",
            "E2E_MAX_DELAY=1m: give whole seconds",
        ),
        (
            "E2E_STREAM_LINGER",
            "x",
            "E2E_STREAM_LINGER=x: give whole seconds",
        ),
        (
            "E2E_PROBE_PERIOD",
            "0",
            "E2E_PROBE_PERIOD=0: give whole seconds >= 1",
        ),
        (
            "E2E_PROBE_PERIOD",
            "10s",
            "E2E_PROBE_PERIOD=10s: give whole seconds >= 1",
        ),
    ] {
        let (code, stderr) = finish(fake.start(&[(key, value)]));
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.contains(message), "{key}={value}: {stderr}");
    }
    assert_eq!(fake.calls(), "", "the cluster was touched");
}

#[test]
fn a_failed_install_removes_what_was_created() {
    let fake = Fake::new("exit 1");
    let (code, stderr) = finish(fake.start(&[]));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("the webhook did not become Ready"),
        "{stderr}"
    );
    let calls = fake.calls();
    assert!(
        calls.contains("kubectl create namespace drain-e2e-system"),
        "{calls}"
    );
    assert!(
        calls.contains("helm uninstall drain-webhook-e2e -n drain-e2e-system"),
        "{calls}"
    );
    assert!(
        calls.contains("kubectl delete namespace drain-e2e-system"),
        "{calls}"
    );
    // Never created, never deleted.
    assert!(!calls.contains("create namespace drain-e2e-on"), "{calls}");
    assert!(!calls.contains("delete namespace drain-e2e-on"), "{calls}");
}

#[test]
fn an_interrupted_run_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let started = dir.path().join("started");
    // helm install holds until the test has interrupted the script.
    let fake = Fake::new(&format!(
        "touch {s}; while [ ! -f {g} ]; do sleep 0.05; done",
        s = started.display(),
        g = go.display()
    ));
    let child = fake.start(&[]);
    let deadline = Instant::now() + PATIENCE;
    while !started.exists() {
        assert!(Instant::now() < deadline, "helm install never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill has no memory effects; the pid is our child's.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    std::fs::write(&go, "").unwrap();
    let (code, stderr) = finish(child);
    assert_eq!(code, 130, "{stderr}");
    assert!(
        stderr.contains("interrupted") && stderr.contains("cleaning up"),
        "{stderr}"
    );
    let calls = fake.calls();
    assert!(
        calls.contains("helm uninstall drain-webhook-e2e"),
        "{calls}"
    );
    assert!(
        calls.contains("kubectl delete namespace drain-e2e-system"),
        "{calls}"
    );
}

/// The demo's manifests as the script applies them, through the real webhook offline on
/// Kubernetes 1.32.
fn mutated_demo(env: &[(&str, &str)]) -> String {
    let fake = Fake::new("exit 0");
    let out = fake
        .start_with(&["--print-demo", "demo-ns"], env)
        .wait_with_output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fake.calls(), "", "--print-demo touched the cluster");
    // The webhook knows the profiles the script gives the chart.
    let profiles = fake
        .start_with(&["--print-profiles"], env)
        .wait_with_output()
        .unwrap();
    assert!(profiles.status.success());
    let profiles_file = fake.dir.path().join("profiles.json");
    std::fs::write(&profiles_file, &profiles.stdout).unwrap();
    let mut inject = Command::new(env!("CARGO_BIN_EXE_drain-webhook"))
        .args(["inject", "-f", "-", "--kube-version", "1.32"])
        .arg("--profiles-file")
        .arg(&profiles_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    inject.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let mutated = inject.wait_with_output().unwrap();
    assert!(
        mutated.status.success(),
        "{}",
        String::from_utf8_lossy(&mutated.stderr)
    );
    String::from_utf8(mutated.stdout).unwrap()
}

/// `line` directly followed by `next` (YAML list items, indentation ignored).
fn has_pair(text: &str, line: &str, next: &str) -> bool {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines.windows(2).any(|w| w[0] == line && w[1] == next)
}

#[test]
fn the_demo_proxy_gets_the_plan_nginx_gets() {
    // Default: the proxy image has an nginx-family name.
    let yaml = mutated_demo(&[]);
    assert!(has_pair(&yaml, "- --signal", "- SIGQUIT"), "{yaml}");
    assert!(
        has_pair(&yaml, "- install", "- /.drain"),
        "no helper init container: {yaml}"
    );
    // The adaptive hold: M + S + B.
    assert!(yaml.contains("terminationGracePeriodSeconds: 95"), "{yaml}");
    assert!(has_pair(&yaml, "- --hold-max", "- 60s"), "{yaml}");
    // The Service, ServiceAccount and RBAC pass through untouched; the load's Role is read-only.
    assert!(
        yaml.contains("kind: Service\n") && yaml.contains("kind: RoleBinding"),
        "{yaml}"
    );
    assert!(has_pair(&yaml, "- list", "- watch"), "{yaml}");

    // The plain drain-e2e image is a proxy by annotation only: no signal to send, but as a
    // front proxy it still holds while traffic arrives, through the helper.
    let yaml = mutated_demo(&[("E2E_PROXY_IMAGE", "ghcr.io/drain-io/drain-e2e:0.1.0")]);
    assert!(!yaml.contains("--signal"), "{yaml}");
    assert!(has_pair(&yaml, "- --hold-max", "- 60s"), "{yaml}");
    assert!(yaml.contains("terminationGracePeriodSeconds: 95"), "{yaml}");
}

/// With E2E_PROFILE=auto a load balancer lagging at least the default D gets a profile of its
/// own through the chart's settings.profiles (floor L + 5 s); by default (none) there is no
/// profile: the adaptive hold alone must cover the lag (issue 20).
#[test]
fn a_lagging_load_balancer_gets_a_profile_only_when_asked() {
    let yaml = mutated_demo(&[("E2E_LB_DELAY", "12")]);
    assert!(!yaml.contains("drain.io/profile"), "{yaml}");
    let yaml = mutated_demo(&[("E2E_LB_DELAY", "12"), ("E2E_PROFILE", "auto")]);
    assert!(yaml.contains("drain.io/profile: e2e-emulated-lb"), "{yaml}");
    // The profile raises the floor D to 17 s and the hold's cap M with it, to 67 s: M + S + B.
    assert!(has_pair(&yaml, "- --delay", "- 17s"), "{yaml}");
    assert!(has_pair(&yaml, "- --hold-max", "- 67s"), "{yaml}");
    assert!(
        yaml.contains("terminationGracePeriodSeconds: 102"),
        "{yaml}"
    );

    for env in [
        &[("E2E_LB_DELAY", "12"), ("E2E_PROFILE", "none")][..],
        &[("E2E_LB_DELAY", "5")],
    ] {
        let yaml = mutated_demo(env);
        assert!(!yaml.contains("drain.io/profile"), "{env:?}: {yaml}");
        assert!(has_pair(&yaml, "- --delay", "- 10s"), "{env:?}: {yaml}");
        assert!(
            yaml.contains("terminationGracePeriodSeconds: 95"),
            "{env:?}: {yaml}"
        );
    }
    // A built-in by name raises the floor (and M by as much).
    let yaml = mutated_demo(&[("E2E_PROFILE", "azure-lb")]);
    assert!(has_pair(&yaml, "- --delay", "- 15s"), "{yaml}");
    assert!(
        yaml.contains("terminationGracePeriodSeconds: 100"),
        "{yaml}"
    );

    // The chart gets the profile, in the install the script runs.
    let fake = Fake::new("exit 1");
    let (code, stderr) = finish(fake.start(&[("E2E_LB_DELAY", "12"), ("E2E_PROFILE", "auto")]));
    assert_eq!(code, 1, "{stderr}");
    let calls = fake.calls();
    assert!(
        calls.contains(
            r#"--set-json settings.profiles=[{"name":"e2e-emulated-lb","delayFloor":17,"#
        ),
        "{calls}"
    );
    let (code, stderr) = finish(Fake::new("exit 1").start(&[("E2E_PROFILE", "Azure LB")]));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("E2E_PROFILE=Azure LB: give auto, none or a profile name"),
        "{stderr}"
    );
}

/// After the install and before any demo pod, `drain-webhook check --wait` must pass for the
/// opted-in namespace; when it never does, the script fails with check's output and cleans up.
#[test]
fn the_demo_waits_for_check_and_a_failing_check_stops_the_run() {
    let fake = Fake::with_check(
        "exit 0",
        "echo '[FAIL] endpoints: service drain-e2e-system/drain-webhook-e2e has no ready endpoint'; exit 1",
    );
    let (code, stderr) = finish(fake.start(&[]));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("drain-webhook check never passed")
            && stderr.contains("[FAIL] endpoints: service drain-e2e-system/drain-webhook-e2e"),
        "{stderr}"
    );
    let calls = fake.calls();
    let check = calls
        .lines()
        .position(|l| {
            l == "drain-webhook check -n drain-e2e-on --webhook-configuration-name drain-webhook-e2e --wait 2m"
        })
        .unwrap_or_else(|| panic!("no check call: {calls}"));
    let opted_in = calls
        .lines()
        .position(|l| l == "kubectl create namespace drain-e2e-on")
        .unwrap();
    assert!(opted_in < check, "{calls}");
    assert!(!calls.contains("apply"), "the demo was deployed: {calls}");
    assert!(
        calls.contains("helm uninstall drain-webhook-e2e"),
        "{calls}"
    );
}

/// E2E_DELAY sets D on the demo pods (the fixed-10 s versus adaptive comparison of
/// docs/proof.md); the app and proxy know their pod's name (stream ends are matched with pod
/// deletions); the app's stream linger is passed on.
#[test]
fn the_demo_takes_the_delay_and_names_its_pod() {
    let fake = Fake::new("exit 0");
    let out = fake
        .start_with(
            &["--print-demo", "demo-ns"],
            &[("E2E_DELAY", "2"), ("E2E_STREAM_LINGER", "40")],
        )
        .wait_with_output()
        .unwrap();
    assert!(out.status.success());
    let demo = String::from_utf8(out.stdout).unwrap();
    assert!(demo.contains(r#"drain.io/delay: "2s""#), "{demo}");
    assert_eq!(demo.matches("name: POD_NAME").count(), 2, "{demo}");
    assert!(demo.contains(r#""--stream-linger", "40s""#), "{demo}");
    let yaml = mutated_demo(&[("E2E_DELAY", "2")]);
    assert!(has_pair(&yaml, "- --delay", "- 2s"), "{yaml}");
    assert!(has_pair(&yaml, "- --hold-max", "- 60s"), "{yaml}");
    // E2E_MAX_DELAY=0 makes the hold the fixed D: the other side of the comparison.
    let yaml = mutated_demo(&[("E2E_DELAY", "10"), ("E2E_MAX_DELAY", "0")]);
    assert!(yaml.contains("drain.io/max-delay: 0s"), "{yaml}");
    assert!(!yaml.contains("--hold-max"), "{yaml}");
    assert!(yaml.contains("terminationGracePeriodSeconds: 45"), "{yaml}");
}

/// E2E_PROBE_PERIOD sets the demo probe's periodSeconds (default 1 s, as before it existed),
/// and the helper is told the probe's real period (issue 30: slow traffic against 10 s
/// probes).
#[test]
fn the_demo_probe_takes_its_period() {
    let yaml = mutated_demo(&[]);
    assert_eq!(yaml.matches("periodSeconds: 1\n").count(), 1, "{yaml}");
    assert!(has_pair(&yaml, "- --probe-every", "- 1s,1s"), "{yaml}");
    let yaml = mutated_demo(&[("E2E_PROBE_PERIOD", "10")]);
    assert_eq!(yaml.matches("periodSeconds: 10\n").count(), 1, "{yaml}");
    assert!(!yaml.contains("periodSeconds: 1\n"), "{yaml}");
    assert!(has_pair(&yaml, "- --probe-every", "- 10s,10s"), "{yaml}");
}

/// The demo proxy's nginx-family image name gets it the migration at the floor under `auto`
/// (issue 30), as real nginx would: `--migrate SIGHUP`, which the demo proxy handles as
/// nginx's reload does (tests/e2e_reload.rs). The app behind it gets none.
#[test]
fn the_demo_proxy_migrates_its_clients_at_the_floor() {
    let yaml = mutated_demo(&[]);
    assert!(has_pair(&yaml, "- --migrate", "- SIGHUP"), "{yaml}");
    assert_eq!(yaml.matches("- --migrate").count(), 1, "{yaml}");
}

/// The script reads the observed drains where `drain-webhook audit` does: the webhook
/// Service's admin port, through the service proxy (a mismatch would show only on a cluster).
#[cfg(feature = "webhook")]
#[test]
fn the_observed_drains_are_read_where_audit_reads_them() {
    let text = std::fs::read_to_string(script()).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("drains_path="))
        .expect("the script reads GET /drains");
    let path = line
        .trim_matches('"')
        .replace("$system_ns", "drain-e2e-system")
        .replace("$release", "drain-webhook-e2e");
    let service = drain_webhook::audit::WebhookService {
        namespace: "drain-e2e-system".into(),
        name: "drain-webhook-e2e".into(),
    };
    assert_eq!(
        path,
        service
            .admin_port()
            .proxy_path(drain_webhook::audit::observed::DRAINS_PATH)
    );
    assert!(
        text.contains("system_ns=$prefix-system") && text.contains("release=drain-webhook-e2e")
    );
    assert!(
        text.contains("k get --raw \"$drains_path\""),
        "fetched with kubectl get --raw"
    );
}
