//! Whatever the webhook renders, the helper reads back as the same arguments: odd paths
//! and query strings, IPv4 and IPv6 loopback, large ports, any signal, any exec words.

use super::*;
use crate::drain_record::RecordRole;
use crate::helper::net::HttpUrl;
use proptest::prelude::*;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

fn url() -> impl Strategy<Value = HttpUrl> {
    (
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            Just(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            any::<[u16; 8]>().prop_map(|s| IpAddr::V6(Ipv6Addr::from(s))),
        ],
        1u16..=u16::MAX,
        // Path and query: anything the helper's URL rules allow.
        "/[!-~&&[^#]]{0,24}",
    )
        .prop_map(|(ip, port, path)| HttpUrl {
            addr: SocketAddr::new(ip, port),
            path,
        })
}

/// Any path a `terminationMessagePath` can be that the helper takes: absolute, then any
/// characters but NUL (spaces, quotes, `=`, `--`, any script), up to `PATH_MAX` less one.
fn record() -> impl Strategy<Value = RecordArgs> {
    (
        prop_oneof![
            "[^\\x00]{0,40}",
            Just("a".repeat(crate::helper::args::MAX_RECORD_PATH_BYTES - 1)),
        ],
        prop_oneof![Just(RecordRole::Proxy), Just(RecordRole::App)],
    )
        .prop_map(|(rest, role)| RecordArgs {
            path: format!("/{rest}").into(),
            role,
        })
}

/// The delay, a hold or a follow (never both, as the parser requires), bounds at least the
/// delay.
fn wait(delay: u32) -> impl Strategy<Value = Wait> {
    let room = crate::duration::MAX_SECONDS - delay;
    prop_oneof![
        Just(Wait::Delay),
        (
            1u32..=600,
            0..=room,
            prop::collection::vec(1u32..=300, 0..3),
            prop::option::of(prop_oneof![
                // Every signal a process can handle (KILL and STOP are refused).
                (1i32..=64)
                    .prop_filter("handled", |s| *s != libc::SIGKILL && *s != libc::SIGSTOP)
                    .prop_map(Migrate::Signal),
                url().prop_map(Migrate::Post),
            ]),
        )
            .prop_map(move |(quiet, extra, probe_periods, migrate)| {
                let hold = HoldArgs {
                    quiet,
                    cap: delay + extra,
                    probe_periods,
                    migrate,
                };
                Wait::Hold(hold)
            }),
        (prop::collection::btree_set(1u16..=u16::MAX, 1..3), 0..=room).prop_map(
            move |(ports, extra)| {
                let follow = FollowArgs {
                    ports: ports.into_iter().collect(),
                    until: delay + extra,
                };
                Wait::Follow(follow)
            }
        ),
    ]
}

fn prestop_args() -> impl Strategy<Value = PrestopArgs> {
    (0u32..=crate::duration::MAX_SECONDS)
        .prop_flat_map(|delay| (Just(delay), wait(delay), 0u32..=600))
        .prop_flat_map(|(delay, wait, stagger)| (base_args(delay), Just((wait, stagger))))
        .prop_map(|(args, (mut wait, stagger))| {
            // The parser refuses a migration signal that is also a stop signal.
            if let Wait::Hold(hold) = &mut wait
                && let Some(Migrate::Signal(migrate)) = hold.migrate
                && (args.signal == Some(migrate) || args.fast_signal == Some(migrate))
            {
                hold.migrate = None;
            }
            let floor = args.window.floor;
            PrestopArgs {
                window: SignalWindow {
                    floor,
                    wait,
                    stagger,
                },
                ..args
            }
        })
}

fn base_args(delay: u32) -> impl Strategy<Value = PrestopArgs> {
    (
        Just(delay),
        0u32..=crate::duration::MAX_SECONDS,
        prop::collection::vec(url(), 0..3),
        prop::collection::btree_set(1u16..=u16::MAX, 0..4),
        (prop::option::of(1i32..=64), prop::option::of(1i32..=64)),
        prop::option::of(url()),
        prop::option::of(prop::collection::vec("\\PC{0,8}|--|--max", 1..4)),
        prop::option::of(record()),
    )
        .prop_map(
            |(delay, max, notify, ports, signals, then_http_get, exec, record)| {
                let (signal, fast_signal) = signals;
                PrestopArgs {
                    window: SignalWindow::fixed(delay),
                    notify,
                    wait_idle: ports.into_iter().collect(),
                    max,
                    signal,
                    fast_signal: fast_signal.filter(|_| signal.is_some()),
                    then_http_get,
                    then_exec: exec
                        .filter(|words| !words[0].is_empty())
                        .map(|words| words.into_iter().map(OsString::from).collect()),
                    record,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
    #[test]
    fn parse_reads_back_what_to_args_writes(args in prestop_args()) {
        let rendered: Vec<OsString> = args.to_args().into_iter().map(OsString::from).collect();
        prop_assert_eq!(parse(&rendered), Ok(Command::Prestop(args)));
    }
}

#[test]
fn install_renders_what_parse_reads() {
    for (then, parsed) in [
        (None, AfterInstall::Exit),
        (Some(AfterInstall::Exit), AfterInstall::Exit),
        (Some(AfterInstall::Sleep), AfterInstall::Sleep),
    ] {
        let rendered: Vec<OsString> = render_install("/.drain", then)
            .into_iter()
            .map(OsString::from)
            .collect();
        assert_eq!(
            parse(&rendered),
            Ok(Command::Install {
                dir: PathBuf::from("/.drain"),
                then: parsed,
            })
        );
    }
    // The init container's command is the one earlier versions wrote.
    assert_eq!(render_install("/.drain", None), ["install", "/.drain"]);
}
