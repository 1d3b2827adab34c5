//! The stream mode's client: long requests (`GET /stream`) that receive a message every
//! 100 ms. When the server ends a stream cleanly the client reconnects at once through the same
//! path and resumes after the last message it has (`?from=SEQ`); when the stream breaks it does
//! the same, and the end is counted as unclean. Failed reconnects are retried every 100 ms.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use crate::clients::{Target, classify_hyper, connect, get};
use crate::clock;
use crate::demo::POD_HEADER;
use crate::feed::Sequence;
use crate::http::{Failure, Lost, lost};
use crate::tally::{EndKind, SharedTally, StreamEnd};

/// How long a client waits before it tries again to reconnect after a failed attempt.
pub const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// Keeps one stream open on `target` until `stop`, reconnecting as described above.
pub async fn keep_open(
    path: &'static str,
    target: Target,
    timeout: Duration,
    start: Instant,
    tally: SharedTally,
    mut stop: watch::Receiver<bool>,
) {
    let mut sequence = Sequence::default();
    loop {
        let opened = tokio::select! {
            opened = open(&target, sequence.resume_from(), timeout) => opened,
            _ = stop.wait_for(|stopped| *stopped) => return,
        };
        let started = start.elapsed();
        let (response, pod) = match opened {
            Ok(opened) => {
                tally
                    .lock()
                    .expect("tally")
                    .stream_opened(path, started, &Ok(200));
                opened
            }
            Err(lost) => {
                tally
                    .lock()
                    .expect("tally")
                    .stream_opened(path, started, &Err(lost));
                tokio::select! {
                    _ = tokio::time::sleep(RECONNECT_PAUSE) => continue,
                    _ = stop.wait_for(|stopped| *stopped) => return,
                }
            }
        };
        let mut body = response.into_body();
        let asked = sequence.resume_from();
        let mut first = true;
        let end = loop {
            let frame = tokio::select! {
                frame = tokio::time::timeout(timeout, body.frame()) => frame,
                _ = stop.wait_for(|stopped| *stopped) => {
                    tally.lock().expect("tally").stream_open_at_stop(path);
                    return;
                }
            };
            match frame {
                Err(_) => {
                    break (EndKind::Stalled, format!("no message within {timeout:?}"));
                }
                Ok(None) => break (EndKind::Clean, String::new()),
                Ok(Some(Err(e))) => break (EndKind::Reset, format!("stream cut: {e}")),
                Ok(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    match sequence.push(&data) {
                        Ok((received, missing)) => {
                            if first && received > 0 {
                                first = false;
                                // Streams are few: every (re)connection is logged, with what it
                                // asked for and what it got.
                                eprintln!(
                                    "drain-e2e load: stream on {path}: first message from pod {pod:?}, asked from {}, {missing} missing",
                                    asked.map_or("live".to_string(), |seq| seq.to_string())
                                );
                            }
                            tally.lock().expect("tally").messages(
                                path,
                                start.elapsed(),
                                received,
                                missing,
                            )
                        }
                        Err(e) => break (EndKind::Reset, e),
                    }
                }
            }
        };
        sequence.connection_ended();
        eprintln!(
            "drain-e2e load: stream on {path} from pod {pod:?} ended {:?}{}",
            end.0,
            if end.1.is_empty() {
                String::new()
            } else {
                format!(": {}", end.1)
            }
        );
        tally.lock().expect("tally").stream_ended(
            start.elapsed(),
            StreamEnd {
                path: path.to_string(),
                at_unix: clock::now_unix(),
                pod,
                kind: end.0,
                detail: end.1,
            },
        );
    }
}

/// Connects to the backend the target picks and asks for the feed from `from`; the answer's
/// head, and the pod that sent it.
async fn open(
    target: &Target,
    from: Option<u64>,
    timeout: Duration,
) -> Result<(Response<Incoming>, String), Lost> {
    let attempt = async {
        let addr: SocketAddr = target.pick()?;
        let stream = connect(addr).await?;
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| lost(classify_hyper(&e), format!("handshake with {addr}: {e}")))?;
        tokio::spawn(connection);
        let uri = match from {
            Some(seq) => format!("/stream?from={seq}"),
            None => "/stream".to_string(),
        };
        let response = sender
            .send_request(get(&uri))
            .await
            .map_err(|e| lost(classify_hyper(&e), format!("stream from {addr}: {e}")))?;
        match response.status() {
            StatusCode::OK => {
                let pod = response
                    .headers()
                    .get(POD_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                Ok((response, pod))
            }
            status if status.is_server_error() => {
                Err(lost(Failure::Http5xx, format!("{addr} answered {status}")))
            }
            status => Err(lost(Failure::Other, format!("{addr} answered {status}"))),
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(lost(
                Failure::Timeout,
                format!("no stream within {timeout:?}"),
            ))
        })
}
