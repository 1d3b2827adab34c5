use super::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A netlink message of `kind` for `seq` around `payload`, padded to 4 bytes.
fn message(kind: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&((NLMSG_HDRLEN + payload.len()) as u32).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&0x2u16.to_ne_bytes()); // NLM_F_MULTI
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&4242u32.to_ne_bytes());
    out.extend_from_slice(payload);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}

fn attribute(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(data);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}

/// A `struct tcp_info` of `len` bytes with `tcpi_bytes_received` set where it fits.
fn tcp_info(len: usize, bytes_received: u64) -> Vec<u8> {
    let mut info = vec![0xAAu8; len];
    if len >= 136 {
        info[128..136].copy_from_slice(&bytes_received.to_ne_bytes());
    }
    info
}

/// A `struct inet_diag_msg` followed by `attributes`.
fn diag(
    family: u8,
    state: u8,
    port: u16,
    dst: [u8; 16],
    cookie: u64,
    attributes: &[u8],
) -> Vec<u8> {
    let mut msg = vec![0u8; DIAG_MSG_LEN];
    msg[0] = family;
    msg[1] = state;
    msg[4..6].copy_from_slice(&port.to_be_bytes());
    msg[6..8].copy_from_slice(&40000u16.to_be_bytes());
    msg[24..40].copy_from_slice(&dst);
    msg[44..48].copy_from_slice(&(cookie as u32).to_ne_bytes());
    msg[48..52].copy_from_slice(&((cookie >> 32) as u32).to_ne_bytes());
    msg[68..72].copy_from_slice(&777u32.to_ne_bytes()); // inode
    msg.extend_from_slice(attributes);
    msg
}

fn v4(a: [u8; 4]) -> [u8; 16] {
    let mut dst = [0u8; 16];
    dst[..4].copy_from_slice(&a);
    dst
}

fn v6(text: &str) -> [u8; 16] {
    text.parse::<std::net::Ipv6Addr>().unwrap().octets()
}

const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;

#[test]
fn the_request_is_a_sock_diag_dump_of_tcp_asking_for_tcp_info() {
    let request = request(AF_INET6, 7);
    assert_eq!(request.len(), 72);
    assert_eq!(u32::from_ne_bytes(request[0..4].try_into().unwrap()), 72);
    assert_eq!(u16::from_ne_bytes(request[4..6].try_into().unwrap()), 20);
    assert_eq!(u16::from_ne_bytes(request[6..8].try_into().unwrap()), 0x301);
    assert_eq!(u32::from_ne_bytes(request[8..12].try_into().unwrap()), 7);
    assert_eq!(&request[16..20], &[AF_INET6, 6, 0b10, 0]);
    // ESTABLISHED (1), CLOSE_WAIT (8), LISTEN (10).
    let states = u32::from_ne_bytes(request[20..24].try_into().unwrap());
    assert_eq!(states, (1 << 1) | (1 << 8) | (1 << 10));
    assert!(request[24..].iter().all(|&b| b == 0), "no socket id filter");
}

#[test]
fn parses_sockets_and_their_bytes_until_done() {
    let info = attribute(INET_DIAG_INFO, &tcp_info(232, 12_345));
    let mut data = message(
        20,
        1,
        &diag(AF_INET, 1, 8080, v4([10, 1, 2, 3]), 0x1_0000_0002, &info),
    );
    data.extend(message(
        20,
        1,
        &diag(AF_INET, 10, 8080, v4([0; 4]), 3, &info),
    ));
    let mut out = Vec::new();
    assert_eq!(parse_datagram(&data, 1, &mut out), Ok(false));
    assert_eq!(
        out,
        vec![
            TcpSocket {
                state: 1,
                local_port: 8080,
                remote_loopback: false,
                cookie: 0x1_0000_0002,
                bytes_received: Some(12_345),
            },
            TcpSocket {
                state: 10,
                local_port: 8080,
                remote_loopback: false,
                cookie: 3,
                bytes_received: Some(12_345),
            },
        ]
    );
    // The next datagram ends the dump (NLMSG_DONE with 0).
    let done = message(3, 1, &0i32.to_ne_bytes());
    assert_eq!(parse_datagram(&done, 1, &mut out), Ok(true));
    assert_eq!(out.len(), 2);
}

#[test]
fn loopback_peers_are_recognised_in_both_families() {
    let info = attribute(INET_DIAG_INFO, &tcp_info(136, 1));
    for (family, dst, loopback) in [
        (AF_INET, v4([127, 0, 0, 1]), true),
        (AF_INET, v4([127, 9, 9, 9]), true),
        (AF_INET, v4([10, 0, 0, 127]), false),
        (AF_INET6, v6("::1"), true),
        (AF_INET6, v6("::ffff:127.0.0.1"), true),
        (AF_INET6, v6("::ffff:10.0.0.1"), false),
        (AF_INET6, v6("fd00::1"), false),
        (AF_INET6, v6("::2"), false),
    ] {
        let socket = parse_socket(&diag(family, 1, 80, dst, 1, &info)).unwrap();
        assert_eq!(socket.remote_loopback, loopback, "{dst:?}");
    }
    // Another family is not an inet socket.
    assert_eq!(
        parse_socket(&diag(1, 1, 80, v4([127, 0, 0, 1]), 1, &info)),
        None
    );
}

#[test]
fn unknown_attributes_and_flags_are_skipped() {
    let mut attributes = attribute(8, &[1]); // INET_DIAG_SHUTDOWN
    attributes.extend(attribute(99, &[0; 13]));
    // The nested flag (bit 15) does not hide the type.
    attributes.extend(attribute(INET_DIAG_INFO | 0x8000, &tcp_info(136, 99)));
    attributes.extend(attribute(4, b"cubic\0"));
    let socket = parse_socket(&diag(AF_INET, 1, 80, v4([10, 0, 0, 1]), 5, &attributes)).unwrap();
    assert_eq!(socket.bytes_received, Some(99));
}

#[test]
fn a_short_or_missing_tcp_info_has_no_bytes() {
    for info in [
        attribute(INET_DIAG_INFO, &tcp_info(104, 0)), // a 3.x kernel's tcp_info
        attribute(INET_DIAG_INFO, &tcp_info(135, 0)), // cut inside the field
        Vec::new(),                                   // not asked for or not given
    ] {
        let socket = parse_socket(&diag(AF_INET, 1, 80, v4([10, 0, 0, 1]), 5, &info)).unwrap();
        assert_eq!(socket.bytes_received, None);
    }
}

#[test]
fn truncated_and_malformed_messages_are_errors() {
    let info = attribute(INET_DIAG_INFO, &tcp_info(136, 1));
    let good = message(20, 1, &diag(AF_INET, 1, 80, v4([10, 0, 0, 1]), 5, &info));
    let mut out = Vec::new();
    // Cut anywhere: in the header, in the payload.
    for cut in [3, 15, 40, good.len() - 4] {
        assert!(
            parse_datagram(&good[..cut], 1, &mut out).is_err(),
            "cut at {cut}"
        );
    }
    // A length below the header's.
    let mut short = good.clone();
    short[0..4].copy_from_slice(&8u32.to_ne_bytes());
    assert!(parse_datagram(&short, 1, &mut out).is_err());
    // An inet_diag_msg shorter than its struct.
    let cut_msg = message(20, 1, &diag(AF_INET, 1, 80, v4([0; 4]), 5, &[])[..60]);
    assert!(parse_datagram(&cut_msg, 1, &mut out).is_err());
    // An attribute whose length runs past the message, or below its own header.
    for bad_len in [200u16, 2] {
        let mut attr = attribute(INET_DIAG_INFO, &tcp_info(136, 1));
        attr[0..2].copy_from_slice(&bad_len.to_ne_bytes());
        assert_eq!(
            parse_socket(&diag(AF_INET, 1, 80, v4([0; 4]), 5, &attr)),
            None
        );
    }
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn kernel_errors_are_reported() {
    let mut out = Vec::new();
    // NLMSG_ERROR: errno, then the request's header.
    let mut payload = (-libc::EPERM).to_ne_bytes().to_vec();
    payload.extend_from_slice(&[0; 16]);
    let error = parse_datagram(&message(2, 1, &payload), 1, &mut out).unwrap_err();
    assert!(error.starts_with("netlink error: "), "{error}");
    assert!(error.contains("not permitted"), "{error}");
    // NLMSG_DONE carrying an error: the dump failed midway.
    let done = message(3, 1, &(-libc::EINTR).to_ne_bytes());
    assert!(parse_datagram(&done, 1, &mut out).is_err());
    // An NLMSG_ERROR too short to hold the errno.
    assert!(parse_datagram(&message(2, 1, &[]), 1, &mut out).is_err());
}

#[test]
fn messages_of_another_request_are_ignored() {
    let info = attribute(INET_DIAG_INFO, &tcp_info(136, 1));
    let mut data = message(20, 9, &diag(AF_INET, 1, 80, v4([10, 0, 0, 1]), 5, &info));
    data.extend(message(3, 9, &0i32.to_ne_bytes()));
    data.extend(message(1, 2, &[])); // NLMSG_NOOP of this request
    let mut out = Vec::new();
    assert_eq!(parse_datagram(&data, 2, &mut out), Ok(false));
    assert!(out.is_empty());
}

fn socket(state: u8, port: u16, loopback: bool, cookie: u64, bytes: u64) -> TcpSocket {
    TcpSocket {
        state,
        local_port: port,
        remote_loopback: loopback,
        cookie,
        bytes_received: Some(bytes),
    }
}

const LISTEN: u8 = 10;
const ESTABLISHED: u8 = 1;

#[test]
fn counts_bytes_on_connections_open_at_both_samples() {
    let listener = socket(LISTEN, 80, false, 1, 0);
    let mut inbound = Inbound::new(None);
    let first = [listener, socket(ESTABLISHED, 80, false, 10, 500)];
    assert_eq!(inbound.sample(&first), Ok(0), "nothing to compare with");
    // Connection 10 got 300 more; 11 is new (its 900 bytes are PassiveOpens' business).
    let second = [
        listener,
        socket(ESTABLISHED, 80, false, 10, 800),
        socket(ESTABLISHED, 80, false, 11, 900),
    ];
    assert_eq!(inbound.sample(&second), Ok(300));
    assert_eq!(inbound.established(), 2);
    // 10 closed in between; 11 got 40 more, after the peer's FIN (CLOSE_WAIT).
    let third = [listener, socket(TCP_CLOSE_WAIT, 80, false, 11, 940)];
    assert_eq!(inbound.sample(&third), Ok(40));
    // The migration's counts: ESTABLISHED inbound connections only.
    assert_eq!(inbound.established(), 0);
    // Nothing more: idle connections (TCP keepalive probes carry no payload) add nothing.
    assert_eq!(inbound.sample(&third), Ok(0));
    // A counter that went down adds nothing (and is the new reference).
    let fourth = [listener, socket(ESTABLISHED, 80, false, 11, 10)];
    assert_eq!(inbound.sample(&fourth), Ok(0));
}

#[test]
fn only_inbound_connections_from_outside_the_pod_count() {
    let mut inbound = Inbound::new(None);
    let at = |bytes: u64| {
        [
            socket(LISTEN, 8080, false, 1, 0),
            // From the pod's own containers (nginx -> app over localhost).
            socket(ESTABLISHED, 8080, true, 10, bytes),
            // Outgoing: the app's connection to a database, local port ephemeral.
            socket(ESTABLISHED, 43210, false, 11, bytes),
            // Inbound from a load balancer.
            socket(ESTABLISHED, 8080, false, 12, bytes / 2),
        ]
    };
    inbound.sample(&at(1_000)).unwrap();
    assert_eq!(inbound.sample(&at(3_000)), Ok(1_000));
    assert_eq!(inbound.established(), 1, "the load balancer's only");
    // The test override counts a port's connections whatever the peer, and only that port.
    let mut only = Inbound::new(Some(vec![8080]));
    only.sample(&at(1_000)).unwrap();
    assert_eq!(only.sample(&at(3_000)), Ok(2_000 + 1_000));
}

#[test]
fn many_connections_are_matched_by_cookie_in_any_order() {
    let mut inbound = Inbound::new(None);
    let listener = socket(LISTEN, 443, false, 1, 0);
    let mut sockets: Vec<TcpSocket> = (0..5_000u64)
        .map(|i| socket(ESTABLISHED, 443, false, 100 + i * 7, i))
        .collect();
    sockets.push(listener);
    inbound.sample(&sockets).unwrap();
    sockets.reverse();
    for s in &mut sockets {
        if s.state == ESTABLISHED {
            s.bytes_received = s.bytes_received.map(|b| b + 2);
        }
    }
    assert_eq!(inbound.sample(&sockets), Ok(2 * 5_000));
}

#[test]
fn a_counted_connection_without_bytes_is_an_error() {
    let mut inbound = Inbound::new(None);
    let mut old_kernel = socket(ESTABLISHED, 80, false, 10, 0);
    old_kernel.bytes_received = None;
    let error = inbound
        .sample(&[socket(LISTEN, 80, false, 1, 0), old_kernel])
        .unwrap_err();
    assert!(error.contains("tcpi_bytes_received"), "{error}");
    // Listeners and sockets that do not count need no bytes.
    let mut listener = socket(LISTEN, 80, false, 1, 0);
    listener.bytes_received = None;
    assert_eq!(Inbound::new(None).sample(&[listener]), Ok(0));
}

/// The socket of `dump` on `port` that is ESTABLISHED (the server side of the test's connection).
fn server_side(port: u16) -> TcpSocket {
    let sockets = dump().expect("this machine's socket table can be dumped");
    let found: Vec<_> = sockets
        .iter()
        .filter(|s| s.local_port == port && s.state == ESTABLISHED)
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        sockets
            .iter()
            .any(|s| s.local_port == port && s.state == LISTEN),
        "the listener is in the dump"
    );
    *found[0]
}

/// Waits until the server side of the connection on `port` has received `at_least` bytes.
fn received(port: u16, at_least: u64) -> TcpSocket {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let socket = server_side(port);
        if socket.bytes_received.unwrap() >= at_least || Instant::now() > until {
            return socket;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn this_machines_socket_table_shows_bytes_received() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(&[b'x'; 100]).unwrap();
    let first = received(port, 100);
    assert!(first.remote_loopback);
    assert_eq!(first.bytes_received, Some(100));
    assert_ne!(first.cookie, 0);
    let mut inbound = Inbound::new(Some(vec![port]));
    assert_eq!(inbound.sample(&dump().unwrap()), Ok(0));
    // Read or not, bytes the kernel received count.
    let mut buffer = [0u8; 100];
    server.read_exact(&mut buffer).unwrap();
    client.write_all(&[b'y'; 50]).unwrap();
    let second = received(port, 150);
    assert_eq!(
        (second.cookie, second.bytes_received),
        (first.cookie, Some(150))
    );
    assert_eq!(inbound.sample(&dump().unwrap()), Ok(50));
    // The server's answer is the client's received bytes, not the server's.
    server.write_all(b"answer").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(inbound.sample(&dump().unwrap()), Ok(0));
}
