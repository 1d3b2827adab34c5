//! The kernel's view of the pod's network namespace, as the helper reads it: the TCP tables
//! (`/proc/net/tcp`, `/proc/net/tcp6`). Every container of a pod shares the namespace.

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

#[cfg(test)]
mod tests {
    use super::*;

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
