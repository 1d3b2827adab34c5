use super::*;

fn held(why: EndReason) -> Outcome {
    Outcome {
        ended: Some((21_480, why)),
        last_arrival_ms: Some(18_402),
        after_floor: 7,
        migrated_at_ms: None,
        signal_at_ms: None,
    }
}

#[test]
fn each_end_reason_is_recorded_with_its_time() {
    for why in EndReason::ALL {
        let record = held(why).record(RecordRole::App, 15, 0, 22_000);
        assert_eq!(
            record,
            DrainRecord {
                role: RecordRole::App,
                floor_ms: 15_000,
                end_ms: 21_480,
                why,
                last_arrival_ms: Some(18_402),
                after_floor: 7,
                migrated_at_ms: None,
                signal_at_ms: None,
                exit: 0,
            }
        );
    }
}

#[test]
fn the_migration_and_the_signal_are_recorded_when_they_went() {
    let outcome = Outcome {
        migrated_at_ms: Some(10_004),
        signal_at_ms: Some(30_250),
        ..held(EndReason::Cap)
    };
    let record = outcome.record(RecordRole::Proxy, 10, 0, 31_000);
    assert_eq!(record.role, RecordRole::Proxy);
    assert_eq!(record.migrated_at_ms, Some(10_004));
    assert_eq!(record.signal_at_ms, Some(30_250));
    assert!(record.capped_with_traffic());
}

#[test]
fn the_exit_status_is_the_hooks_and_out_of_range_codes_are_255() {
    for (exit, recorded) in [
        (0, 0),
        (1, 1),
        (124, 124),
        (137, 137),
        (-1, 255),
        (256, 255),
    ] {
        let record = held(EndReason::Quiet).record(RecordRole::App, 15, exit, 22_000);
        assert_eq!(record.exit, recorded, "exit {exit}");
    }
}

#[test]
fn a_hook_cut_before_its_hold_ended_ended_at_the_cut_at_a_bound() {
    let outcome = Outcome {
        ended: None,
        last_arrival_ms: Some(40_000),
        after_floor: 12,
        ..Outcome::default()
    };
    let record = outcome.record(RecordRole::App, 10, 124, 45_010);
    assert_eq!((record.end_ms, record.why), (45_010, EndReason::Cap));
    assert_eq!((record.exit, record.after_floor), (124, 12));
}

#[test]
fn times_past_a_day_are_kept_at_a_day() {
    let outcome = Outcome {
        ended: Some((u64::MAX, EndReason::Follow)),
        signal_at_ms: Some(MAX_SECONDS_MILLIS + 1),
        ..Outcome::default()
    };
    let record = outcome.record(RecordRole::App, u32::MAX, 0, u64::MAX);
    assert_eq!(record.floor_ms, MAX_SECONDS_MILLIS);
    assert_eq!(record.end_ms, MAX_SECONDS_MILLIS);
    assert_eq!(record.signal_at_ms, Some(MAX_SECONDS_MILLIS));
}

#[test]
fn appends_after_the_containers_own_message_and_creates_a_missing_file() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let path = dir.join("termination-log");
    let line = held(EndReason::Quiet)
        .record(RecordRole::App, 15, 0, 22_000)
        .to_line();
    assert_eq!(append(&path, &line), Ok(()));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), line);

    // The container's own message, ending with or without a newline: kept whole, and the
    // record on a line of its own, which the observer's reader finds.
    for own in [
        "config reloaded 3 times\nlast error: none\n",
        "exited: no config",
    ] {
        std::fs::write(&path, own).unwrap();
        assert_eq!(append(&path, &line), Ok(()));
        let message = std::fs::read_to_string(&path).unwrap();
        let separator = if own.ends_with('\n') { "" } else { "\n" };
        assert_eq!(message, format!("{own}{separator}{line}"));
        #[cfg(feature = "webhook")]
        assert_eq!(
            crate::drain_record::parse_message(&message),
            Ok(Some(held(EndReason::Quiet).record(
                RecordRole::App,
                15,
                0,
                22_000
            )))
        );
    }
}

#[test]
fn a_file_near_the_kubelets_limit_is_left_as_it_is() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let path = dir.join("termination-log");
    let line = held(EndReason::Cap)
        .record(RecordRole::Proxy, 10, 0, 60_000)
        .to_line();
    // Exactly at the limit with the record: written.
    let fits = "x".repeat(MAX_MESSAGE_BYTES - line.len() - 1) + "\n";
    std::fs::write(&path, &fits).unwrap();
    assert_eq!(append(&path, &line), Ok(()));
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        MAX_MESSAGE_BYTES as u64
    );
    // One byte more: refused, the message untouched.
    let over = "x".repeat(MAX_MESSAGE_BYTES - line.len()) + "\n";
    std::fs::write(&path, &over).unwrap();
    let err = append(&path, &line).unwrap_err();
    assert!(err.contains("4096 bytes the kubelet keeps"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), over);
}

#[test]
fn paths_that_cannot_take_a_record_are_errors_and_create_nothing() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let line = held(EndReason::Fixed)
        .record(RecordRole::App, 10, 0, 10_000)
        .to_line();
    let missing_folder = dir.join("no-such-folder/termination-log");
    let err = append(&missing_folder, &line).unwrap_err();
    assert!(err.contains("cannot open it"), "{err}");
    assert!(!dir.join("no-such-folder").exists());
    let err = append(dir, &line).unwrap_err();
    assert!(err.contains("cannot open it"), "{err}");
    let file = dir.join("file");
    std::fs::write(&file, "").unwrap();
    let err = append(&file.join("below-a-file"), &line).unwrap_err();
    assert!(err.contains("cannot open it"), "{err}");
    // A FIFO nobody reads: an error at once, never a hook that waits for a reader.
    let fifo = dir.join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|status| status.success()), "mkfifo");
    let err = append(&fifo, &line).unwrap_err();
    assert!(err.contains("not a regular file"), "{err}");
}
