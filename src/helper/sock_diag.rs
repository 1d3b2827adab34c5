//! The TCP sockets of the pod's network namespace as the kernel's socket table lists them over
//! NETLINK_SOCK_DIAG (what `ss -ti` reads), with the bytes each connection has received. The
//! adaptive hold uses them to see requests on connections that stay open (keep-alive pools,
//! HTTP/2, a load balancer's kept-alive connections), which open nothing `Tcp: PassiveOpens`
//! could count. docs/helper.md, "The adaptive hold".
//!
//! A dump of the inet sockets needs no privilege and no capability (any user may run `ss`):
//! only a netlink socket, which the runtimes' default seccomp profiles allow. Layouts are the
//! kernel's UAPI (linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h, linux/tcp.h); the
//! parser works on byte slices so hand-built messages test it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::proc_net::{TCP_ESTABLISHED, TCP_LISTEN};

/// `TCP_CLOSE_WAIT`: the peer has sent its FIN; bytes that came before it still count.
pub const TCP_CLOSE_WAIT: u8 = 8;

/// `struct nlmsghdr`: len u32, type u16, flags u16, seq u32, pid u32.
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x01;
/// `NLM_F_ROOT | NLM_F_MATCH`.
const NLM_F_DUMP: u16 = 0x300;
/// linux/sock_diag.h.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// linux/inet_diag.h: the extension whose payload is `struct tcp_info`; asked for with bit
/// `INET_DIAG_INFO - 1` of `idiag_ext`.
const INET_DIAG_INFO: u16 = 2;
/// `struct inet_diag_req_v2` (56 bytes) after the header.
const REQUEST_LEN: usize = NLMSG_HDRLEN + 56;
/// `struct inet_diag_msg`: family, state, timer, retrans (u8 each), then `struct
/// inet_diag_sockid` at 4 (sport 4, dport 6, src 8..24, dst 24..40, if 40, cookie 44..52),
/// expires, rqueue, wqueue, uid, inode: 72 bytes, then the attributes.
const DIAG_MSG_LEN: usize = 72;
/// `tcpi_bytes_received` in `struct tcp_info` (a `__u64` at 128, since Linux 4.1; offsetof
/// checked against this machine's headers).
const TCPI_BYTES_RECEIVED: usize = 128;
/// The kernel's dump datagrams are at most 32 KiB (`netlink_dump` caps its allocation there).
const RECV_BUFFER: usize = 32 * 1024;

/// One TCP socket of the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSocket {
    pub state: u8,
    pub local_port: u16,
    /// The peer is 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104: another container of the pod.
    pub remote_loopback: bool,
    /// The kernel's socket cookie: unique for the socket's lifetime, set for sockets not yet
    /// accepted too (their inode is 0 until then).
    pub cookie: u64,
    /// `tcpi_bytes_received`; `None` when the kernel's `tcp_info` is too short to hold it.
    pub bytes_received: Option<u64>,
}

/// Reads `N` bytes at `at`, if there are that many.
fn bytes<const N: usize>(data: &[u8], at: usize) -> Option<[u8; N]> {
    data.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn align4(len: usize) -> usize {
    len.saturating_add(3) & !3
}

/// A dump request for the TCP sockets of `family` in the states the hold needs, asking for
/// `tcp_info`.
pub fn request(family: u8, seq: u32) -> [u8; REQUEST_LEN] {
    let mut message = [0u8; REQUEST_LEN];
    message[0..4].copy_from_slice(&(REQUEST_LEN as u32).to_ne_bytes());
    message[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    message[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    message[8..12].copy_from_slice(&seq.to_ne_bytes());
    // inet_diag_req_v2: family, protocol, ext, pad, states; the socket id stays zero (no filter).
    message[16] = family;
    message[17] = libc::IPPROTO_TCP as u8;
    message[18] = 1 << (INET_DIAG_INFO - 1);
    let states = [TCP_ESTABLISHED, TCP_CLOSE_WAIT, TCP_LISTEN]
        .iter()
        .fold(0u32, |mask, state| mask | 1 << state);
    message[20..24].copy_from_slice(&states.to_ne_bytes());
    message
}

/// Adds the sockets of one datagram of the answer to request `seq` to `out`. `Ok(true)` once
/// the dump is done; an error for a kernel error, a malformed or truncated message.
pub fn parse_datagram(data: &[u8], seq: u32, out: &mut Vec<TcpSocket>) -> Result<bool, String> {
    let mut rest = data;
    while !rest.is_empty() {
        let malformed = || "malformed netlink message".to_string();
        let len = bytes(rest, 0)
            .map(u32::from_ne_bytes)
            .ok_or_else(malformed)? as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return Err(malformed());
        }
        let kind = u16::from_ne_bytes(bytes(rest, 4).ok_or_else(malformed)?);
        let message_seq = u32::from_ne_bytes(bytes(rest, 8).ok_or_else(malformed)?);
        let payload = &rest[NLMSG_HDRLEN..len];
        rest = rest.get(align4(len)..).unwrap_or_default();
        // Answers to an earlier request on the socket are not this dump's.
        if message_seq != seq {
            continue;
        }
        match kind {
            // Both carry an errno (negative) or 0; a dump that failed midway ends with it.
            NLMSG_DONE | NLMSG_ERROR => {
                let code = bytes(payload, 0).map_or(0, i32::from_ne_bytes);
                if code < 0 {
                    return Err(format!(
                        "netlink error: {}",
                        io::Error::from_raw_os_error(-code)
                    ));
                }
                if kind == NLMSG_ERROR && payload.len() < 4 {
                    return Err(malformed());
                }
                return Ok(true);
            }
            SOCK_DIAG_BY_FAMILY => out.push(
                parse_socket(payload).ok_or_else(|| "malformed inet_diag message".to_string())?,
            ),
            _ => {}
        }
    }
    Ok(false)
}

/// One `struct inet_diag_msg` and its attributes; `None` when cut short or malformed.
pub fn parse_socket(payload: &[u8]) -> Option<TcpSocket> {
    let header = payload.get(..DIAG_MSG_LEN)?;
    let (family, state) = (header[0], header[1]);
    let local_port = u16::from_be_bytes(bytes(header, 4)?);
    let dst: [u8; 16] = bytes(header, 24)?;
    let remote_loopback = match i32::from(family) {
        libc::AF_INET => dst[0] == 127,
        libc::AF_INET6 => {
            dst == std::net::Ipv6Addr::LOCALHOST.octets()
                || (dst[..10] == [0; 10] && dst[10..12] == [0xff; 2] && dst[12] == 127)
        }
        _ => return None,
    };
    let cookie = u64::from(u32::from_ne_bytes(bytes(header, 44)?))
        | u64::from(u32::from_ne_bytes(bytes(header, 48)?)) << 32;
    let mut bytes_received = None;
    let mut attributes = &payload[DIAG_MSG_LEN..];
    // `struct nlattr`: len u16 (header included), type u16 (top two bits are flags).
    while attributes.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes(bytes(attributes, 0)?));
        let kind = u16::from_ne_bytes(bytes(attributes, 2)?) & 0x3fff;
        if len < 4 || len > attributes.len() {
            return None;
        }
        if kind == INET_DIAG_INFO {
            bytes_received =
                bytes(&attributes[4..len], TCPI_BYTES_RECEIVED).map(u64::from_ne_bytes);
        }
        attributes = attributes.get(align4(len)..).unwrap_or_default();
    }
    Some(TcpSocket {
        state,
        local_port,
        remote_loopback,
        cookie,
        bytes_received,
    })
}

/// The listening, established and close-wait TCP sockets of the caller's network namespace,
/// IPv4 and IPv6. The error says why not (no netlink, refused, malformed answer).
#[allow(unsafe_code)]
pub fn dump() -> Result<Vec<TcpSocket>, String> {
    // SAFETY: socket(2) with constant arguments; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        let err = io::Error::last_os_error();
        return Err(format!("cannot open a NETLINK_SOCK_DIAG socket: {err}"));
    }
    // SAFETY: `fd` was just opened and nothing else owns it; OwnedFd closes it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // A kernel that never answers must not hang the hook: --max is checked between samples.
    let timeout = libc::timeval {
        tv_sec: 1,
        tv_usec: 0,
    };
    // SAFETY: `timeout` is a valid timeval that outlives the call, with its size passed.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const timeout).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    let mut sockets = Vec::new();
    let mut buffer = vec![0u8; RECV_BUFFER];
    for (seq, family) in [(1, libc::AF_INET), (2, libc::AF_INET6)] {
        let message = request(family as u8, seq);
        // SAFETY: the message is a live buffer of the length passed; the socket is open.
        let sent = unsafe { libc::send(fd.as_raw_fd(), message.as_ptr().cast(), message.len(), 0) };
        if sent < 0 {
            let err = io::Error::last_os_error();
            return Err(format!("cannot query the socket table: {err}"));
        }
        loop {
            // SAFETY: `buffer` is writable for its whole length; MSG_TRUNC only makes the call
            // return a datagram's full length, so a cut one is seen below.
            let received = unsafe {
                libc::recv(
                    fd.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                    libc::MSG_TRUNC,
                )
            };
            let Ok(received) = usize::try_from(received) else {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(format!("cannot read the socket table: {err}"));
            };
            let datagram = buffer
                .get(..received)
                .ok_or_else(|| "cannot read the socket table: answer truncated".to_string())?;
            if parse_datagram(datagram, seq, &mut sockets)? {
                break;
            }
        }
    }
    Ok(sockets)
}

/// Counts the bytes that arrive on the pod's inbound connections that were open at the
/// previous sample too.
#[derive(Debug, Default)]
pub struct Inbound {
    /// Test only: count connections on these local ports, loopback peers included, instead of
    /// those on the ports the pod listens on from peers outside it.
    only_ports: Option<Vec<u16>>,
    /// `(cookie, bytes received)` of the counted connections at the previous sample, an
    /// open-addressing table (cookie 0 is an empty slot; the kernel's cookies start at 1).
    previous: Vec<(u64, u64)>,
    /// How many of them were ESTABLISHED (the migration's before and after counts).
    established: usize,
}

impl Inbound {
    pub fn new(only_ports: Option<Vec<u16>>) -> Inbound {
        Inbound {
            only_ports,
            previous: Vec::new(),
            established: 0,
        }
    }

    /// The inbound connections in state ESTABLISHED at the last sample.
    pub fn established(&self) -> usize {
        self.established
    }

    /// The bytes received since the previous call on inbound connections present both then and
    /// in `sockets`. A connection seen for the first time adds nothing (it is a new connection,
    /// counted by PassiveOpens); one that closed in between is simply gone. Loopback peers are
    /// the pod's own containers (a proxy's upstream, the helper itself), not a load balancer.
    /// An error when a counted connection has no `tcpi_bytes_received` (a kernel before 4.1).
    pub fn sample(&mut self, sockets: &[TcpSocket]) -> Result<u64, String> {
        let mut listening: Vec<u16> = Vec::new();
        for socket in sockets {
            if socket.state == TCP_LISTEN && !listening.contains(&socket.local_port) {
                listening.push(socket.local_port);
            }
        }
        let mut counted = Vec::new();
        self.established = 0;
        for socket in sockets {
            let inbound = match &self.only_ports {
                Some(ports) => ports.contains(&socket.local_port),
                None => listening.contains(&socket.local_port) && !socket.remote_loopback,
            };
            if socket.state != TCP_LISTEN && inbound {
                let received = socket.bytes_received.ok_or_else(|| {
                    "the kernel's tcp_info has no tcpi_bytes_received (before Linux 4.1)"
                        .to_string()
                })?;
                counted.push((socket.cookie, received));
                self.established += usize::from(socket.state == TCP_ESTABLISHED);
            }
        }
        let mut bytes = 0u64;
        let mut table = vec![(0u64, 0u64); (counted.len() * 2).next_power_of_two().max(8)];
        for &(cookie, received) in &counted {
            if let Some(before) = find(&self.previous, cookie) {
                // The kernel's counter only grows; a smaller value adds nothing.
                bytes = bytes.saturating_add(received.saturating_sub(before));
            }
            let slot = slot(&table, cookie);
            table[slot] = (cookie, received);
        }
        self.previous = table;
        Ok(bytes)
    }
}

/// The slot of `cookie` in `table` (a power of two long, never full): where it is, or the
/// empty slot where it would go. Fibonacci hashing spreads the kernel's sequential cookies.
fn slot(table: &[(u64, u64)], cookie: u64) -> usize {
    let mask = table.len() - 1;
    let mut at = (cookie.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask;
    while table[at].0 != 0 && table[at].0 != cookie {
        at = (at + 1) & mask;
    }
    at
}

fn find(table: &[(u64, u64)], cookie: u64) -> Option<u64> {
    if table.is_empty() || cookie == 0 {
        return None;
    }
    let (found, received) = table[slot(table, cookie)];
    (found == cookie).then_some(received)
}

#[cfg(test)]
mod tests;
