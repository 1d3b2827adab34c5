//! Protection of the listener against clients that hold connections without using them.
//!
//! - [`FirstBytes`]: after the TLS handshake, the client must send the start of its first
//!   request (the 24-byte HTTP/2 preface, or that much of an HTTP/1.1 request) within a
//!   deadline. hyper's HTTP/1.1 header timeout only starts once hyper-util's protocol
//!   detection is done, and that detection (like the HTTP/2 preface read) waits forever: a
//!   client that completes TLS and then sends nothing, or a few bytes, would hold its
//!   connection (and its slot under `--max-connections`) for good.
//! - The accept loop in `super::run` takes a permit of a semaphore of `max_connections`
//!   before accepting; excess connections wait in the kernel's listen backlog.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Bytes that must arrive before the deadline: the HTTP/2 client preface
/// (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`), and no more than any real HTTP/1.1 request line
/// with its Host header.
pub const FIRST_BYTES: usize = 24;

/// An IO whose reads fail with `TimedOut` when fewer than [`FIRST_BYTES`] bytes have
/// arrived by the deadline. After that, it is the inner IO unchanged (hyper's own timeouts
/// take over).
#[derive(Debug)]
pub struct FirstBytes<IO> {
    inner: IO,
    missing: usize,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<IO> FirstBytes<IO> {
    pub fn new(inner: IO, timeout: Duration) -> Self {
        Self {
            inner,
            missing: FIRST_BYTES,
            deadline: Some(Box::pin(tokio::time::sleep(timeout))),
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for FirstBytes<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                this.missing = this.missing.saturating_sub(read);
                if this.missing == 0 {
                    this.deadline = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => {
                let expired = this
                    .deadline
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if expired {
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no request started within the header timeout",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for FirstBytes<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn silence_times_out() {
        let (_client, server) = tokio::io::duplex(64);
        let mut guarded = FirstBytes::new(server, Duration::from_millis(50));
        let mut buf = [0u8; 8];
        let err = guarded.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_few_bytes_then_silence_times_out() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut guarded = FirstBytes::new(server, Duration::from_millis(50));
        client.write_all(b"PRI * HTTP").await.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(guarded.read(&mut buf).await.unwrap(), 10);
        let err = guarded.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_started_request_is_never_timed_out_here() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut guarded = FirstBytes::new(server, Duration::from_millis(50));
        client
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(guarded.read(&mut buf).await.unwrap(), FIRST_BYTES);
        // Idle for longer than the deadline: the read stays pending (hyper's job now).
        let idle = tokio::time::timeout(Duration::from_millis(300), guarded.read(&mut buf)).await;
        assert!(idle.is_err(), "the read should still be pending");
        client.write_all(b"x").await.unwrap();
        assert_eq!(guarded.read(&mut buf).await.unwrap(), 1);
    }
}
