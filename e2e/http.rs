//! The `new` client mode: one HTTP/1.1 request per connection (`Connection: close`), and the
//! kinds of loss every mode counts. Kept on plain TCP rather than hyper: this mode is about
//! what a socket reports (refused, reset, timeout) on a connection no library has touched; the
//! few bytes of HTTP it needs are a request line and a status line. The stand-in server below
//! (`read_head`, `answer`) serves the tests of this mode.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest request head accepted (the load client and kubelet probes send far less).
#[cfg(test)]
pub const MAX_HEAD: usize = 8 * 1024;

/// Why a request was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// The connection was refused (nothing listens any more).
    Refused,
    /// The connection was reset or closed before a complete response.
    Reset,
    /// No complete answer within the client's timeout.
    Timeout,
    /// An answer with a 5xx status (a proxy whose app is gone answers 502).
    #[serde(rename = "http_5xx")]
    Http5xx,
    /// The emulated load balancer had no backend to send the request to.
    NoBackend,
    /// Anything else (unreachable host, a malformed answer...).
    Other,
}

impl Failure {
    pub const ALL: [Failure; 6] = [
        Failure::Refused,
        Failure::Reset,
        Failure::Timeout,
        Failure::Http5xx,
        Failure::NoBackend,
        Failure::Other,
    ];
}

/// A lost request: the kind and what the socket said.
#[derive(Debug)]
pub struct Lost {
    pub kind: Failure,
    pub detail: String,
}

pub fn lost(kind: Failure, detail: impl Into<String>) -> Lost {
    Lost {
        kind,
        detail: detail.into(),
    }
}

/// The kind of an I/O error seen while connecting, sending or reading.
pub fn classify_io(error: &io::Error) -> Failure {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => Failure::Refused,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => Failure::Reset,
        io::ErrorKind::TimedOut => Failure::Timeout,
        _ => Failure::Other,
    }
}

/// The status code of a complete HTTP/1.x answer, or why there is none.
pub fn parse_status(answer: &[u8]) -> Result<u16, Lost> {
    if answer.is_empty() {
        return Err(lost(Failure::Reset, "connection closed without an answer"));
    }
    let line_end = answer
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or_else(|| lost(Failure::Reset, "answer cut off inside the status line"))?;
    let line = std::str::from_utf8(&answer[..line_end])
        .map_err(|_| lost(Failure::Other, "status line is not UTF-8"))?;
    let mut parts = line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(lost(Failure::Other, format!("bad status line {line:?}")));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(lost(Failure::Other, format!("bad status line {line:?}")));
    }
    code.parse::<u16>()
        .ok()
        .filter(|c| (100..600).contains(c))
        .ok_or_else(|| lost(Failure::Other, format!("bad status code in {line:?}")))
}

/// One GET / on a new connection, bounded by `timeout` from connect to the last byte.
/// Ok is a non-5xx answer; everything else is a lost request with its kind.
pub async fn get(target: SocketAddr, timeout: Duration) -> Result<u16, Lost> {
    let exchange = async {
        let mut stream = TcpStream::connect(target)
            .await
            .map_err(|e| lost(classify_io(&e), format!("connect {target}: {e}")))?;
        stream.set_nodelay(true).ok();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: drain-e2e\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| lost(classify_io(&e), format!("send to {target}: {e}")))?;
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .await
            .map_err(|e| lost(classify_io(&e), format!("read from {target}: {e}")))?;
        let status = parse_status(&answer)?;
        if status >= 500 {
            return Err(lost(
                Failure::Http5xx,
                format!("{target} answered {status}"),
            ));
        }
        Ok(status)
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(lost(
            Failure::Timeout,
            format!("{target}: no answer within {timeout:?}"),
        )),
    }
}

/// Reads a request head (up to the blank line). None when the peer closed first.
#[cfg(test)]
pub async fn read_head(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(Some(head));
        }
        if head.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
    }
}

/// A complete answer with `Connection: close`.
#[cfg(test)]
pub fn answer(status: u16, reason: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    const TIMEOUT: Duration = Duration::from_secs(5);

    #[test]
    fn status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n\r\n").unwrap(), 200);
        assert_eq!(parse_status(b"HTTP/1.0 502 Bad Gateway\r\n").unwrap(), 502);
        assert_eq!(parse_status(b"").unwrap_err().kind, Failure::Reset);
        assert_eq!(
            parse_status(b"HTTP/1.1 20").unwrap_err().kind,
            Failure::Reset
        );
        assert_eq!(
            parse_status(b"SSH-2.0\r\n").unwrap_err().kind,
            Failure::Other
        );
        assert_eq!(
            parse_status(b"HTTP/1.1 999 What\r\n").unwrap_err().kind,
            Failure::Other
        );
    }

    /// A stand-in server on loopback that handles one connection with `serve`.
    async fn stand_in<F, Fut>(serve: F) -> SocketAddr
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            serve(stream).await;
        });
        addr
    }

    #[tokio::test]
    async fn ok_answer() {
        let addr = stand_in(|mut s| async move {
            read_head(&mut s).await.unwrap();
            s.write_all(&answer(200, "OK", "ok")).await.unwrap();
        })
        .await;
        assert_eq!(get(addr, TIMEOUT).await.unwrap(), 200);
    }

    #[tokio::test]
    async fn refused() {
        // A port that was just free: bind, note it, close it.
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let lost = get(addr, TIMEOUT).await.unwrap_err();
        assert_eq!(lost.kind, Failure::Refused, "{}", lost.detail);
    }

    #[tokio::test]
    async fn reset() {
        let addr = stand_in(|mut s| async move {
            read_head(&mut s).await.unwrap();
            // SO_LINGER 0: close sends RST instead of FIN.
            s.set_zero_linger().unwrap();
            drop(s);
        })
        .await;
        let lost = get(addr, TIMEOUT).await.unwrap_err();
        assert_eq!(lost.kind, Failure::Reset, "{}", lost.detail);
    }

    #[tokio::test]
    async fn closed_without_answer_is_reset() {
        let addr = stand_in(|mut s| async move {
            read_head(&mut s).await.unwrap();
            s.shutdown().await.unwrap();
        })
        .await;
        let lost = get(addr, TIMEOUT).await.unwrap_err();
        assert_eq!(lost.kind, Failure::Reset, "{}", lost.detail);
    }

    #[tokio::test]
    async fn timeout() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let addr = stand_in(|s| async move {
            // Hold the connection open, answer nothing, until the test is done.
            let _s = s;
            let _ = rx.await;
        })
        .await;
        let lost = get(addr, Duration::from_millis(200)).await.unwrap_err();
        assert_eq!(lost.kind, Failure::Timeout, "{}", lost.detail);
        drop(tx);
    }

    #[tokio::test]
    async fn server_error() {
        let addr = stand_in(|mut s| async move {
            read_head(&mut s).await.unwrap();
            s.write_all(&answer(502, "Bad Gateway", "")).await.unwrap();
        })
        .await;
        let lost = get(addr, TIMEOUT).await.unwrap_err();
        assert_eq!(lost.kind, Failure::Http5xx, "{}", lost.detail);
    }

    #[tokio::test]
    async fn client_error_is_not_lost() {
        let addr = stand_in(|mut s| async move {
            read_head(&mut s).await.unwrap();
            s.write_all(&answer(404, "Not Found", "")).await.unwrap();
        })
        .await;
        assert_eq!(get(addr, TIMEOUT).await.unwrap(), 404);
    }
}
