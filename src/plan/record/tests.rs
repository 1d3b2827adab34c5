use super::*;

fn container(path: Option<&str>, policy: Option<&str>) -> ContainerShape {
    ContainerShape {
        name: "app".into(),
        termination_message_path: path.map(|p| p.to_owned().into()),
        termination_message_policy: policy.map(|p| p.to_owned().into()),
        ..ContainerShape::default()
    }
}

#[test]
fn the_containers_path_or_the_apis_default() {
    let to = |path: &str| RecordPlan::Path(path.to_owned().into());
    assert_eq!(
        RecordPlan::of(&container(None, None)),
        to("/dev/termination-log")
    );
    assert_eq!(
        RecordPlan::of(&container(Some(""), None)),
        to("/dev/termination-log")
    );
    assert_eq!(
        RecordPlan::of(&container(Some("/var/log/ends here"), Some("File"))),
        to("/var/log/ends here")
    );
    let longest = format!("/{}", "é".repeat(2047));
    assert_eq!(longest.len(), 4095);
    assert_eq!(
        RecordPlan::of(&container(Some(&longest), None)),
        to(&longest)
    );
}

#[test]
fn skipped_with_the_reason_explain_shows() {
    let said = |path: Option<&str>, policy: Option<&str>| {
        RecordPlan::of(&container(path, policy)).to_string()
    };
    assert!(
        said(None, Some("FallbackToLogsOnError"))
            .starts_with("no drain record: terminationMessagePolicy FallbackToLogsOnError")
    );
    // FallbackToLogsOnError decides whatever the path.
    assert!(said(Some("/dev/termination-log"), Some("FallbackToLogsOnError")).contains("log tail"));
    assert_eq!(
        said(Some("relative/log"), None),
        "no drain record: terminationMessagePath \"relative/log\" is not an absolute path"
    );
    assert!(said(Some("/a\0b"), None).contains("\"/a\\0b\" contains a NUL byte"));
    let long = format!("/{}", "x".repeat(5000));
    let text = said(Some(&long), None);
    assert!(text.contains("...\" is 5001 bytes long"), "{text}");
    assert!(text.len() < 200, "{text}");
    assert_eq!(said(None, None), "drain record to /dev/termination-log");
}

#[test]
fn the_role_is_the_containers_and_a_skipped_record_passes_no_flag() {
    let mut plan = ContainerPlan::new("nginx", false, 0, Role::Proxy);
    assert_eq!(plan.record_args(), None);
    plan.record = Some(RecordPlan::Path("/dev/termination-log".into()));
    assert_eq!(
        plan.record_args(),
        Some(RecordArgs {
            path: "/dev/termination-log".into(),
            role: RecordRole::Proxy
        })
    );
    plan.role = Role::App;
    assert_eq!(plan.record_args().map(|r| r.role), Some(RecordRole::App));
    plan.record = Some(RecordPlan::Skipped("why".into()));
    assert_eq!(plan.record_args(), None);
}
