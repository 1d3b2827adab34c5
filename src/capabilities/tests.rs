use super::*;

#[test]
fn real_runtime_versions_parse() {
    let parsed = |s| RuntimeVersion::parse(s).map(|r| (r.runtime, r.version));
    assert_eq!(
        parsed("containerd://1.7.27"),
        Some(("containerd".into(), (1, 7, 27)))
    );
    assert_eq!(
        parsed("containerd://2.1.3"),
        Some(("containerd".into(), (2, 1, 3)))
    );
    assert_eq!(parsed("cri-o://1.31.2"), Some(("cri-o".into(), (1, 31, 2))));
    assert_eq!(
        parsed("docker://24.0.7"),
        Some(("docker".into(), (24, 0, 7)))
    );
    // Distribution builds: a v prefix, a package suffix, a pre-release.
    assert_eq!(
        parsed("containerd://v2.1.0-rc.1"),
        Some(("containerd".into(), (2, 1, 0)))
    );
    assert_eq!(
        parsed("containerd://1.7.27-1"),
        Some(("containerd".into(), (1, 7, 27)))
    );
    assert_eq!(parsed("cri-o://1.31"), Some(("cri-o".into(), (1, 31, 0))));
    for garbage in [
        "",
        "containerd",
        "containerd://",
        "://1.7.0",
        "containerd://latest",
        "containerd://1",
        "containerd://1.x.2",
        "containerd://1.7.2.9",
        "con tainerd://1.7.2",
    ] {
        assert_eq!(parsed(garbage), None, "{garbage:?}");
    }
}

#[test]
fn image_volumes_need_containerd_2_1_or_crio_1_31() {
    let supports = |s| RuntimeVersion::parse(s).unwrap().supports_image_volumes();
    assert!(!supports("containerd://1.6.36"));
    assert!(!supports("containerd://1.7.27"));
    assert!(!supports("containerd://2.0.5"));
    assert!(supports("containerd://2.1.3"));
    assert!(supports("containerd://3.0.0"));
    assert!(!supports("cri-o://1.30.9"));
    assert!(supports("cri-o://1.31.2"));
    assert!(!supports("docker://24.0.7"));
}

const NEW: Option<&str> = Some("v1.35.0");

#[test]
fn the_cluster_summary_needs_every_node() {
    let all = ImageVolumeNodes::summarise([
        ("a", Some("containerd://2.1.3"), NEW),
        ("b", Some("cri-o://1.31.2"), Some("v1.36.1-eks-4a1b")),
    ]);
    assert_eq!(all, ImageVolumeNodes::All { nodes: 2 });
    assert_eq!(all.can_mount(), Some(true));
    assert_eq!(all.blocking_by_reason(), [("kubelet", 0), ("runtime", 0)]);

    let mixed = ImageVolumeNodes::summarise([
        ("c", Some("containerd://2.1.3"), NEW),
        ("worker-9", Some("containerd://1.7.27"), NEW),
        ("worker-1", Some("garbage"), NEW),
    ]);
    assert_eq!(
        mixed
            .blocking()
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        ["worker-1", "worker-9"]
    );
    assert_eq!(mixed.can_mount(), Some(false));
    let one_old = ImageVolumeNodes::summarise([
        ("a", Some("containerd://2.1.3"), NEW),
        ("x", Some("containerd://1.7.27"), NEW),
    ]);
    assert_eq!(
        one_old.to_string(),
        "no: 1 of 2 nodes cannot mount them: x (containerd 1.7.27) (image volumes need kubelet 1.35+ and containerd 2.1+ or CRI-O 1.31+)"
    );
    let missing = ImageVolumeNodes::summarise([("a", None, None)]);
    assert_eq!(missing.can_mount(), Some(false));
    assert!(
        missing
            .to_string()
            .contains("a (no kubelet version, no runtime version)")
    );

    let none = ImageVolumeNodes::summarise([]);
    assert_eq!(none, ImageVolumeNodes::NoNodes);
    assert_eq!(none.can_mount(), Some(false));
    assert_eq!(ImageVolumeNodes::Unknown.can_mount(), None);
    assert_eq!(
        [all.state(), mixed.state(), none.state()],
        ["all", "not-all", "no-nodes"]
    );
}

/// A control plane upgraded first: 1.34 kubelets on containerd 2.1 block image volumes,
/// and the summary names each blocking node with what blocks it.
#[test]
fn every_kubelet_must_be_1_35_or_newer() {
    assert!(kubelet_mounts_image_volumes("v1.35.0"));
    assert!(kubelet_mounts_image_volumes("v1.35.2+k3s1"));
    assert!(kubelet_mounts_image_volumes("v2.0.0"));
    assert!(!kubelet_mounts_image_volumes("v1.34.2"));
    assert!(!kubelet_mounts_image_volumes("v1.33.5-eks-1a2b"));
    assert!(!kubelet_mounts_image_volumes(""));
    assert!(!kubelet_mounts_image_volumes("latest"));

    let upgrading = ImageVolumeNodes::summarise([
        ("cp-0", Some("containerd://2.1.3"), NEW),
        ("worker-0", Some("containerd://2.1.3"), Some("v1.34.2")),
        ("worker-1", Some("containerd://1.7.27"), Some("v1.33.5")),
    ]);
    assert_eq!(upgrading.can_mount(), Some(false));
    assert_eq!(
        upgrading.blocking(),
        [
            BlockingNode {
                name: "worker-0".into(),
                kubelet: Some("v1.34.2".into()),
                runtime: None
            },
            BlockingNode {
                name: "worker-1".into(),
                kubelet: Some("v1.33.5".into()),
                runtime: Some("containerd://1.7.27".into())
            },
        ]
    );
    assert_eq!(
        upgrading.blocking_by_reason(),
        [("kubelet", 2), ("runtime", 1)]
    );
    assert_eq!(
        upgrading.to_string(),
        "no: 2 of 3 nodes cannot mount them: worker-0 (kubelet v1.34.2), worker-1 (kubelet v1.33.5, containerd 1.7.27) (image volumes need kubelet 1.35+ and containerd 2.1+ or CRI-O 1.31+)"
    );
    let unreadable = ImageVolumeNodes::summarise([("n", Some("containerd://2.1.3"), Some("dev"))]);
    assert!(
        unreadable
            .to_string()
            .contains(r#"n (kubelet "dev", which is not a version)"#),
        "{unreadable}"
    );
    // Every node upgraded: image volumes.
    let upgraded = ImageVolumeNodes::summarise([
        ("worker-0", Some("containerd://2.1.3"), NEW),
        ("worker-1", Some("cri-o://1.31.2"), NEW),
    ]);
    assert_eq!(upgraded.can_mount(), Some(true));
}

/// A large cluster mid-upgrade: the text names ten nodes and counts the rest.
#[test]
fn the_text_names_ten_blocking_nodes() {
    let names: Vec<String> = (0..25).map(|i| format!("n{i:02}")).collect();
    let summary = ImageVolumeNodes::summarise(
        names
            .iter()
            .map(|n| (n.as_str(), Some("containerd://2.1.3"), Some("v1.34.0"))),
    );
    let text = summary.to_string();
    assert!(
        text.contains("no: 25 of 25 nodes cannot mount them: n00 (kubelet v1.34.0)"),
        "{text}"
    );
    assert!(text.contains("n09 (kubelet v1.34.0) and 15 more"), "{text}");
    assert!(!text.contains("n10"), "{text}");
}
