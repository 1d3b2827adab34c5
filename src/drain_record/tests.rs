use super::*;

fn record() -> DrainRecord {
    DrainRecord {
        role: RecordRole::App,
        floor_ms: 15_000,
        end_ms: 21_480,
        why: EndReason::Quiet,
        last_arrival_ms: Some(18_402),
        after_floor: 7,
        migrated_at_ms: None,
        signal_at_ms: Some(21_480),
        exit: 0,
    }
}

#[test]
fn the_line_is_the_documented_one_and_reads_back() {
    let line = record().to_line();
    assert_eq!(
        line,
        "{\"v\":1,\"role\":\"app\",\"floor\":15.000,\"end\":21.480,\"why\":\"quiet\",\"lastArrival\":18.402,\"afterFloor\":7,\"migratedAt\":null,\"signalAt\":21.480,\"exit\":0}\n"
    );
    assert_eq!(parse_message(&line), Ok(Some(record())));
}

#[test]
fn the_longest_record_fits_its_bound() {
    let longest = DrainRecord {
        role: RecordRole::Proxy,
        floor_ms: MAX_SECONDS_MILLIS,
        end_ms: MAX_SECONDS_MILLIS,
        why: EndReason::Follow,
        last_arrival_ms: Some(MAX_SECONDS_MILLIS),
        after_floor: u64::MAX,
        migrated_at_ms: Some(MAX_SECONDS_MILLIS),
        signal_at_ms: Some(MAX_SECONDS_MILLIS),
        exit: 255,
    };
    let line = longest.to_line();
    assert!(line.len() <= MAX_RECORD_BYTES, "{} bytes", line.len());
    assert_eq!(parse_message(&line), Ok(Some(longest)));
}

#[test]
fn the_users_text_before_the_record_is_skipped_and_the_last_record_wins() {
    let mut second = record();
    second.why = EndReason::Cap;
    let message = format!(
        "panic: out of memory\n{{\"v\": not ours\n{}{}",
        record().to_line(),
        second.to_line().trim_end()
    );
    assert_eq!(parse_message(&message), Ok(Some(second)));
}

#[test]
fn a_message_without_a_record_is_none() {
    assert_eq!(parse_message(""), Ok(None));
    assert_eq!(parse_message("exited: config missing\n{\"a\":1}"), Ok(None));
}

#[test]
fn hostile_or_malformed_records_are_errors_naming_the_problem() {
    let line = record().to_line();
    let cases: Vec<(String, &str, &str)> = vec![
        ("x".repeat(MAX_MESSAGE_BYTES + 1), "too-long", "4096"),
        (
            format!("{{\"v\":1,{}}}", " ".repeat(300)),
            "too-long",
            "256",
        ),
        ("{\"v\":1,\"role\":".into(), "json", "EOF"),
        (line.replace("\"v\":1", "\"v\":2"), "version", "upgrade"),
        (line.replace("\"app\"", "\"db\""), "field", "role"),
        (line.replace("\"quiet\"", "\"bored\""), "field", "why"),
        (line.replace("\"end\":21.480", "\"end\":-1"), "field", "end"),
        (
            line.replace("\"end\":21.480", "\"end\":1e300"),
            "field",
            "end",
        ),
        (line.replace("\"exit\":0", "\"exit\":256"), "field", "exit"),
        (
            line.replace("\"afterFloor\":7", "\"afterFloor\":-7"),
            "json",
            "-7",
        ),
        (line.replace(",\"exit\":0", ""), "json", "exit"),
        (
            line.replace("\"floor\":15.000", "\"floor\":15.000,\"floor\":1"),
            "json",
            "duplicate",
        ),
    ];
    for (message, reason, mentions) in cases {
        let err = parse_message(&message).expect_err(&message);
        assert_eq!(err.reason(), reason, "{message}: {err}");
        assert!(err.to_string().contains(mentions), "{message}: {err}");
    }
}

#[test]
fn later_fields_of_the_same_version_are_ignored() {
    let line = record()
        .to_line()
        .replace("\"exit\":0", "\"exit\":0,\"later\":[1]");
    assert_eq!(parse_message(&line), Ok(Some(record())));
}
