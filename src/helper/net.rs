//! The network side of the helper: `http://IP:PORT/PATH` URLs (IP literals only: the binary is
//! static, so no NSS and no DNS), and a tiny blocking HTTP/1.1 client. The kernel's tables
//! are read in `proc_net`.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A parsed `http://` URL whose host is an IP literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub addr: SocketAddr,
    /// Path plus query, always starting with `/`.
    pub path: String,
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.addr, self.path)
    }
}

impl HttpUrl {
    /// Parses `http://127.0.0.1:8080/drain`, `http://[::1]:8080/x?y=1`, `http://10.0.0.1/`.
    /// The port defaults to 80 and the path to `/`. Host names, `https`, user info, fragments
    /// and characters that could break the request line are rejected.
    pub fn parse(input: &str) -> Result<HttpUrl, String> {
        let rest = input
            .strip_prefix("http://")
            .ok_or("must start with http:// (https and other schemes are not supported)")?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err("missing host: use an IP address such as 127.0.0.1 or [::1]".into());
        }
        if authority.contains('@') {
            return Err("user info is not supported".into());
        }
        let (host, port) = split_host_port(authority)?;
        let ip: IpAddr = host
            .parse()
            .map_err(|_| format!("host \"{host}\" is not an IP address (no DNS lookups)"))?;
        if path.contains('#') {
            return Err("fragments are not supported".into());
        }
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err("the path must not contain spaces or control characters".into());
        }
        Ok(HttpUrl {
            addr: SocketAddr::new(ip, port),
            path: path.to_string(),
        })
    }
}

fn split_host_port(authority: &str) -> Result<(&str, u16), String> {
    let (host, port_text) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or("unclosed [ in an IPv6 address")?;
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(format!("[{host}] is not an IPv6 address"));
        }
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or("expected :PORT after the ]")?,
                ),
            ),
        }
    } else if authority.matches(':').count() > 1 {
        return Err("IPv6 addresses must be written in brackets: http://[::1]:PORT/".into());
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port_text {
        None => 80,
        Some(text) => parse_port(text).ok_or_else(|| format!("bad port \"{text}\""))?,
    };
    Ok((host, port))
}

/// A TCP port, 1-65535, in plain digits (no sign: `u16::from_str` takes "+80").
pub fn parse_port(text: &str) -> Option<u16> {
    let port = text.parse::<u16>().ok()?;
    (port > 0 && text.bytes().all(|b| b.is_ascii_digit())).then_some(port)
}

/// Sends `METHOD PATH HTTP/1.1` with no body and `Connection: close`, and returns the status
/// code of the answer. Connecting, writing and reading the status line all end at `deadline`.
pub fn http_request(method: &str, url: &HttpUrl, deadline: Instant) -> io::Result<u16> {
    let timeout = remaining(deadline)?;
    let mut stream = TcpStream::connect_timeout(&url.addr, timeout)?;
    let _ = stream.set_nodelay(true);
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: drain-helper/{version}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n",
        path = url.path,
        host = url.addr,
        version = env!("CARGO_PKG_VERSION"),
    );
    stream.set_write_timeout(Some(remaining(deadline)?))?;
    stream.write_all(request.as_bytes())?;
    // Read until the end of the status line (the rest of the answer is not needed).
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 512];
    loop {
        if let Some(end) = head.windows(2).position(|w| w == b"\r\n") {
            return parse_status_line(&head[..end]);
        }
        if head.len() > 8 * 1024 {
            return Err(invalid("status line longer than 8 KiB"));
        }
        stream.set_read_timeout(Some(remaining(deadline)?))?;
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if n == 0 {
            return match head.is_empty() {
                true => Err(invalid("connection closed without an answer")),
                false => parse_status_line(&head),
            };
        }
        head.extend_from_slice(&buf[..n]);
    }
}

fn remaining(deadline: Instant) -> io::Result<Duration> {
    match deadline.checked_duration_since(Instant::now()) {
        // Socket timeouts of zero mean "block forever", so anything this small is a timeout.
        Some(left) if left >= Duration::from_millis(1) => Ok(left),
        _ => Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")),
    }
}

fn invalid(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Parses `HTTP/1.1 200 OK` (reason optional) into the status code.
pub fn parse_status_line(line: &[u8]) -> io::Result<u16> {
    let text = std::str::from_utf8(line).map_err(|_| invalid("status line is not text"))?;
    let mut parts = text.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/") {
        return Err(invalid("answer is not HTTP"));
    }
    match code.parse::<u16>() {
        Ok(status) if code.len() == 3 && (100..=999).contains(&status) => Ok(status),
        _ => Err(invalid("malformed status code")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    #[test]
    fn parses_ipv4_and_ipv6_urls() {
        let url = HttpUrl::parse("http://127.0.0.1:8080/drain").unwrap();
        assert_eq!(
            url.addr,
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080))
        );
        assert_eq!(url.path, "/drain");
        assert_eq!(url.to_string(), "http://127.0.0.1:8080/drain");

        let url = HttpUrl::parse("http://[::1]:9000/a/b?x=1&y=2").unwrap();
        assert_eq!(url.addr, "[::1]:9000".parse().unwrap());
        assert_eq!(url.path, "/a/b?x=1&y=2");
        assert_eq!(url.to_string(), "http://[::1]:9000/a/b?x=1&y=2");
    }

    #[test]
    fn defaults_port_and_path() {
        let url = HttpUrl::parse("http://10.1.2.3").unwrap();
        assert_eq!(url.addr, "10.1.2.3:80".parse().unwrap());
        assert_eq!(url.path, "/");
        let url = HttpUrl::parse("http://[::1]/x").unwrap();
        assert_eq!(url.addr, "[::1]:80".parse().unwrap());
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "",
            "127.0.0.1:80/x",
            "https://127.0.0.1/x",
            "http://localhost:8080/x",
            "http://example.com/",
            "http:///x",
            "http://127.0.0.1:0/x",
            "http://127.0.0.1:65536/x",
            "http://127.0.0.1:+80/x",
            "http://127.0.0.1:/x",
            "http://127.0.0.1:8080/a b",
            "http://127.0.0.1:8080/a\r\nX: y",
            "http://127.0.0.1:8080/a#frag",
            "http://user@127.0.0.1/",
            "http://::1:80/x",
            "http://[::1/x",
            "http://[::1]x/",
            "http://[127.0.0.1]:80/",
            "http://256.0.0.1/",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn parses_status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK").unwrap(), 200);
        assert_eq!(parse_status_line(b"HTTP/1.0 503").unwrap(), 503);
        assert_eq!(
            parse_status_line(b"HTTP/1.1 404 Not Found Here").unwrap(),
            404
        );
        for bad in [
            &b""[..],
            b"SSH-2.0-OpenSSH",
            b"HTTP/1.1 20 OK",
            b"HTTP/1.1 2000 OK",
            b"HTTP/1.1 abc",
            b"\xff\xfe",
        ] {
            assert!(parse_status_line(bad).is_err(), "{bad:?}");
        }
    }
}
