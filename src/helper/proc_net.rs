//! The kernel's view of the pod's network namespace, as the helper reads it: the TCP tables
//! (`/proc/net/tcp`, `/proc/net/tcp6`) and the count of accepted connections
//! (`/proc/net/snmp`). Every container of a pod shares the namespace, so these are the pod's.

use std::path::Path;

/// The kernel's protocol counters for the reader's network namespace.
pub const SNMP: &str = "/proc/net/snmp";

/// `Tcp: PassiveOpens` from the text of `/proc/net/snmp`: how many connections were accepted
/// in the network namespace since it was created (every one, however short, unlike a snapshot
/// of `/proc/net/tcp`). The file has a header line naming the columns and a values line, both
/// starting with `Tcp:`; the column is found by name, since kernels have added columns over
/// time. `None` when either line is missing, the column is absent, the lines do not have the
/// same number of fields (a truncated read), or the value is not a number.
pub fn passive_opens(snmp: &str) -> Option<u64> {
    let mut tcp = snmp.lines().filter_map(|line| line.strip_prefix("Tcp:"));
    let (header, values) = (tcp.next()?, tcp.next()?);
    let names: Vec<&str> = header.split_whitespace().collect();
    let numbers: Vec<&str> = values.split_whitespace().collect();
    if names.len() != numbers.len() {
        return None;
    }
    let column = names.iter().position(|name| *name == "PassiveOpens")?;
    numbers[column].parse().ok()
}

/// [`passive_opens`] of the file at `path`; the error says what went wrong, for the log.
pub fn read_passive_opens(path: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    passive_opens(&text).ok_or_else(|| {
        format!(
            "cannot read {}: no Tcp PassiveOpens count in it",
            path.display()
        )
    })
}

/// TCP states as the kernel prints them in the `st` column.
pub const TCP_ESTABLISHED: u8 = 0x01;
pub const TCP_LISTEN: u8 = 0x0A;

/// Counts the `entries` that are ESTABLISHED, whose local port is one of `ports` and whose
/// remote port is not one of `ignore_remote` (the helper's own connections to those ports).
pub fn count_established(entries: &[TcpEntry], ports: &[u16], ignore_remote: &[u16]) -> usize {
    entries
        .iter()
        .filter(|entry| {
            entry.state == TCP_ESTABLISHED
                && ports.contains(&entry.local_port)
                && !ignore_remote.contains(&entry.remote_port)
        })
        .count()
}

/// The fields of one `/proc/net/tcp{,6}` line the helper needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpEntry {
    pub local_port: u16,
    pub remote_port: u16,
    pub state: u8,
    /// The line came from `/proc/net/tcp6` (32 hex digits of address).
    pub v6: bool,
    /// The socket's inode, as `/proc/PID/fd/N` links name it (`socket:[INODE]`); 0 when the
    /// line has none.
    pub inode: u64,
}

/// Parses `  0: 0100007F:1F90 0100007F:C350 01 ...` (tcp6 lines carry 32 hex digits of
/// address instead of 8). Returns `None` for the header and anything malformed.
pub fn parse_tcp_line(line: &str) -> Option<TcpEntry> {
    let mut fields = line.split_whitespace();
    let slot = fields.next()?;
    if !slot.ends_with(':') {
        return None;
    }
    let local = fields.next()?;
    let remote = fields.next()?;
    let state = u8::from_str_radix(fields.next()?, 16).ok()?;
    // tx_queue:rx_queue, tr:tm->when, retrnsmt, uid, timeout, then the inode.
    let inode = fields.nth(5).and_then(|f| f.parse().ok()).unwrap_or(0);
    Some(TcpEntry {
        local_port: hex_port(local)?,
        remote_port: hex_port(remote)?,
        state,
        v6: local.len() == 37,
        inode,
    })
}

fn hex_port(address: &str) -> Option<u16> {
    let (ip, port) = address.rsplit_once(':')?;
    if !(ip.len() == 8 || ip.len() == 32) || !ip.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    if port.len() != 4 {
        return None;
    }
    u16::from_str_radix(port, 16).ok()
}

/// The kernel's TCP tables; in a pod every container shares the network namespace.
pub const TCP_TABLES: [&str; 2] = ["/proc/net/tcp", "/proc/net/tcp6"];

/// Every socket of both TCP tables; `None` when neither can be read.
pub fn read_sockets() -> Option<Vec<TcpEntry>> {
    let mut readable = false;
    let mut sockets = Vec::new();
    for table in TCP_TABLES {
        if let Ok(text) = std::fs::read_to_string(table) {
            readable = true;
            sockets.extend(text.lines().filter_map(parse_tcp_line));
        }
    }
    readable.then_some(sockets)
}

/// Established connections whose local port is in `ports` (and whose remote port is not in
/// `ignore_remote`), over IPv4 and IPv6; `None` when neither table can be read.
pub fn established_on(ports: &[u16], ignore_remote: &[u16]) -> Option<usize> {
    read_sockets().map(|sockets| count_established(&sockets, ports, ignore_remote))
}

/// Whether a socket listens on one of `ports` now; `None` when the TCP tables cannot be read.
pub fn listening_on(ports: &[u16]) -> Option<bool> {
    let sockets = read_sockets()?;
    Some(
        sockets
            .iter()
            .any(|s| s.state == TCP_LISTEN && ports.contains(&s.local_port)),
    )
}

/// The inodes of the sockets `pid` has open (`/proc/PID/fd/N -> socket:[INODE]`). Reading
/// another process's fds needs its user (the hook runs as the container's user) or
/// CAP_SYS_PTRACE; `None` when refused.
pub fn socket_inodes(pid: i32) -> Option<Vec<u64>> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        dir.filter_map(|entry| {
            let link = std::fs::read_link(entry.ok()?.path()).ok()?;
            link.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/proc/net/snmp` as a 6.x kernel writes it (Ip and Icmp lines shortened).
    const SNMP_TEXT: &str = "\
Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos InDiscards InDelivers OutRequests OutDiscards OutNoRoutes ReasmTimeout ReasmReqds ReasmOKs ReasmFails FragOKs FragFails FragCreates OutTransmits
Ip: 2 64 963649 0 0 0 0 0 963649 959210 0 0 0 0 0 0 0 0 0 959210
Icmp: InMsgs InErrors InCsumErrors InDestUnreachs
Icmp: 2 0 0 2
IcmpMsg: InType3
IcmpMsg: 2
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 59647 59062 549 1010 0 963574 959138 16 0 1214 0
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 73 0 0 75 0 0 0 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 0 0 0 0 0 0 0
";

    #[test]
    fn reads_passive_opens_by_column_name() {
        assert_eq!(passive_opens(SNMP_TEXT), Some(59_062));
        // An older kernel without some columns, and the column somewhere else: found by name.
        let old = "Tcp: PassiveOpens ActiveOpens\nTcp: 7 9\n";
        assert_eq!(passive_opens(old), Some(7));
        // Large counters (64-bit kernels count in unsigned long).
        let big = "Tcp: PassiveOpens\nTcp: 18446744073709551615\n";
        assert_eq!(passive_opens(big), Some(u64::MAX));
    }

    #[test]
    fn broken_snmp_text_gives_none() {
        let header = "Tcp: RtoAlgorithm RtoMin ActiveOpens PassiveOpens CurrEstab";
        for bad in [
            String::new(),
            "garbage".to_string(),
            // No Tcp lines at all, or only the header.
            SNMP_TEXT.replace("Tcp:", "Tcpx:"),
            format!("{header}\n"),
            // The column is missing.
            "Tcp: RtoAlgorithm ActiveOpens\nTcp: 1 5\n".to_string(),
            // Not a number, negative, empty.
            format!("{header}\nTcp: 1 200 5 many 0\n"),
            format!("{header}\nTcp: 1 200 5 -3 0\n"),
            // Truncated: the values line stops early (even after the column), or mid-file.
            format!("{header}\nTcp: 1 200 5\n"),
            format!("{header}\nTcp: 1 200 5 42\n"),
            SNMP_TEXT[..SNMP_TEXT.find("Tcp: 1 200").unwrap() + 12].to_string(),
            // Fields of other protocols do not count.
            "Udp: PassiveOpens\nUdp: 5\n".to_string(),
        ] {
            assert_eq!(passive_opens(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reading_a_file_says_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snmp");
        let missing = read_passive_opens(&path).unwrap_err();
        assert!(missing.starts_with("cannot read "), "{missing}");
        std::fs::write(&path, "Tcp: ActiveOpens\nTcp: 1\n").unwrap();
        let broken = read_passive_opens(&path).unwrap_err();
        assert!(
            broken.ends_with("no Tcp PassiveOpens count in it"),
            "{broken}"
        );
        std::fs::write(&path, SNMP_TEXT).unwrap();
        assert_eq!(read_passive_opens(&path), Ok(59_062));
    }

    #[test]
    fn this_machines_snmp_parses() {
        // Where /proc is mounted (the test machine), the real file has the count.
        if let Ok(text) = std::fs::read_to_string(SNMP) {
            assert!(passive_opens(&text).is_some(), "{text}");
        }
    }

    const TCP4: &str = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
   3: 0100007F:1F90 0100007F:D432 06 00000000:00000000 03:00000F7A 00000000     0        0 0 3 0
   4: 0100007F:1F91 0100007F:D433 08 00000000:00000000 00:00000000 00000000     0        0 4 1 0 20 4 30 10 -1
";

    const TCP6: &str = "\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5 1 0 100 0 0 10 0
   1: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:E1A2 01 00000000:00000000 00:00000000 00000000  1000        0 6 1 0 20 4 30 10 -1
   2: 0000000000000000FFFF00000100007F:0050 0000000000000000FFFF00000100007F:E1A3 01 00000000:00000000 00:00000000 00000000  1000        0 7 1 0 20 4 30 10 -1
";

    #[test]
    fn parses_tcp_lines() {
        let lines: Vec<_> = TCP4.lines().map(parse_tcp_line).collect();
        assert_eq!(lines[0], None, "the header is skipped");
        assert_eq!(
            lines[1],
            Some(TcpEntry {
                local_port: 8080,
                remote_port: 0,
                state: 0x0A,
                v6: false,
                inode: 1,
            })
        );
        assert_eq!(
            lines[2],
            Some(TcpEntry {
                local_port: 8080,
                remote_port: 0xD431,
                state: 0x01,
                v6: false,
                inode: 2,
            })
        );
        let v6 = TCP6.lines().nth(2).and_then(parse_tcp_line).unwrap();
        assert_eq!(v6.local_port, 8080);
        assert_eq!(v6.remote_port, 0xE1A2);
        assert_eq!(v6.state, 1);
        assert!(v6.v6);
        assert_eq!(v6.inode, 6);
        // A line cut before the inode still parses, with inode 0.
        let short = parse_tcp_line("0: 0100007F:1F90 0100007F:D431 0A").unwrap();
        assert_eq!((short.state, short.inode), (TCP_LISTEN, 0));
    }

    fn entries(table: &str) -> Vec<TcpEntry> {
        table.lines().filter_map(parse_tcp_line).collect()
    }

    #[test]
    fn counts_only_established_on_local_ports() {
        let (tcp4, tcp6) = (entries(TCP4), entries(TCP6));
        // Line 1 is an established server-side connection on 8080; line 2 is the client side
        // of it (remote port 8080, not counted); line 3 is TIME_WAIT; listeners never count.
        assert_eq!(count_established(&tcp4, &[8080], &[]), 1);
        // 8081 (0x1F91) only has a CLOSE_WAIT (08) connection.
        assert_eq!(count_established(&tcp4, &[8081], &[]), 0);
        assert_eq!(count_established(&tcp4, &[0xD431], &[]), 1);
        assert_eq!(count_established(&tcp4, &[], &[]), 0);
        assert_eq!(count_established(&tcp6, &[8080], &[]), 1);
        assert_eq!(count_established(&tcp6, &[80, 8080], &[]), 2);
        assert_eq!(count_established(&tcp6, &[9090], &[]), 0);
    }

    #[test]
    fn the_helpers_own_connections_are_not_counted() {
        // Line 1's peer is port 0xD431: when that is the helper's own connection, 8080 is idle.
        let tcp4 = entries(TCP4);
        assert_eq!(count_established(&tcp4, &[8080], &[0xD431]), 0);
        assert_eq!(count_established(&tcp4, &[8080], &[0xD432]), 1);
    }

    #[test]
    fn malformed_tcp_lines_are_skipped() {
        for bad in [
            "",
            "garbage",
            "0: 0100007F:1F90",
            "0: 0100007F:1F90 0100007F:D431 zz",
            "0: 0100007F1F90 0100007F:D431 01",
            "0: 0100007F:1F9 0100007F:D431 01",
            "0: 0100007:1F90 0100007F:D431 01",
            "0: 0100007F:1F90 0100007F:D431 100",
            "0 0100007F:1F90 0100007F:D431 01",
            "0: 0100007G:1F90 0100007F:D431 01",
        ] {
            assert_eq!(parse_tcp_line(bad), None, "{bad:?}");
        }
    }
}
