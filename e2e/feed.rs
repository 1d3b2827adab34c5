//! The stream mode's feed: message SEQ is due at SEQ tenths of a second since 1970, the same in
//! every pod, like a live feed that every replica serves. A client resumes with `?from=SEQ`;
//! the app replays what it still keeps (`--stream-replay`), so a reconnect that comes late
//! misses messages, and the client sees it in the sequence numbers.

use std::time::Duration;

use futures_util::Stream;
use hyper::body::{Bytes, Frame};
use tokio::sync::watch;

use crate::clock;

/// One frame of a body, as the stream of the feed produces them (the error type is the
/// demo's `BoxError`).
pub type BodyFrame = Result<Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>>;

/// Messages per second of every stream (one every 100 ms).
pub const PER_SECOND: u64 = 10;

/// The message due at `unix` (the latest one already due).
pub fn live_seq(unix: f64) -> u64 {
    (unix * PER_SECOND as f64) as u64
}

/// The first message of a stream asked to start at `from` (None: the live one), when messages
/// older than `replay` are no longer kept.
pub fn first_message(from: Option<u64>, now_unix: f64, replay: Duration) -> u64 {
    let live = live_seq(now_unix);
    let kept = (replay.as_secs_f64() * PER_SECOND as f64) as u64;
    match from {
        None => live,
        Some(from) => from.max(live.saturating_sub(kept)),
    }
}

/// `from=SEQ` of a query string.
pub fn from_query(query: &str) -> Option<u64> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("from="))
        .and_then(|seq| seq.parse().ok())
}

/// The stream's body: one line per message, each when it is due, until `end` turns true; then
/// the body ends cleanly (the last chunk of a chunked answer, END_STREAM in HTTP/2).
pub fn messages(start: u64, end: watch::Receiver<bool>) -> impl Stream<Item = BodyFrame> {
    futures_util::stream::unfold((start, end), |(seq, mut end)| async move {
        if *end.borrow() {
            return None;
        }
        let wait = seq as f64 / PER_SECOND as f64 - clock::now_unix();
        if wait > 0.0 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(wait)) => {}
                _ = end.wait_for(|ended| *ended) => return None,
            }
        }
        let line = Bytes::from(format!("{seq}\n"));
        Some((Ok(Frame::data(line)), (seq + 1, end)))
    })
}

/// The client's side of one logical stream, across reconnects: which message comes next, how
/// many arrived and how many never did.
#[derive(Debug, Default)]
pub struct Sequence {
    partial: Vec<u8>,
    /// The message the client waits for next; None before the first one.
    expected: Option<u64>,
    pub messages: u64,
    pub missing: u64,
}

impl Sequence {
    /// Where a (re)connection asks the feed to start.
    pub fn resume_from(&self) -> Option<u64> {
        self.expected
    }

    /// Bytes of the body as they arrive; returns how many messages were completed and how many
    /// were found missing, or why the bytes are not the feed.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(u64, u64), String> {
        self.partial.extend_from_slice(bytes);
        let (mut received, mut missing) = (0, 0);
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let text = std::str::from_utf8(&line[..end]).map_err(|_| "a message is not UTF-8")?;
            let seq: u64 = text
                .parse()
                .map_err(|_| format!("{text:?} is not a message of the feed"))?;
            match self.expected {
                Some(expected) if seq < expected => continue, // a replayed duplicate
                Some(expected) => missing += seq - expected,
                None => {}
            }
            self.expected = Some(seq + 1);
            received += 1;
        }
        self.messages += received;
        self.missing += missing;
        Ok((received, missing))
    }

    /// A connection ended: a message cut in the middle is dropped (it is asked for again).
    pub fn connection_ended(&mut self) {
        self.partial.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_message_replays_only_what_is_kept() {
        let replay = Duration::from_secs(2);
        let now = 1000.05; // message 10000 is due
        assert_eq!(first_message(None, now, replay), 10_000);
        assert_eq!(first_message(Some(9_990), now, replay), 9_990);
        assert_eq!(first_message(Some(9_000), now, replay), 9_980);
        assert_eq!(first_message(Some(10_003), now, replay), 10_003);
    }

    #[test]
    fn queries() {
        assert_eq!(from_query("from=42"), Some(42));
        assert_eq!(from_query("x=1&from=7"), Some(7));
        assert_eq!(from_query("from=x"), None);
        assert_eq!(from_query(""), None);
    }

    #[test]
    fn a_sequence_counts_messages_gaps_and_duplicates() {
        let mut sequence = Sequence::default();
        assert_eq!(sequence.resume_from(), None);
        assert_eq!(sequence.push(b"100\n10").unwrap(), (1, 0));
        assert_eq!(sequence.push(b"1\n102\n").unwrap(), (2, 0));
        assert_eq!(sequence.resume_from(), Some(103));
        // A reconnect cut a message short: the half is dropped and asked for again.
        sequence.push(b"10").unwrap();
        sequence.connection_ended();
        // The replay starts two messages late: two missing; a duplicate is ignored.
        assert_eq!(sequence.push(b"105\n104\n106\n").unwrap(), (2, 2));
        assert_eq!((sequence.messages, sequence.missing), (5, 2));
        assert!(sequence.push(b"hello\n").is_err());
    }

    #[tokio::test]
    async fn the_body_ends_cleanly_when_told() {
        use futures_util::StreamExt;
        let (end, ended) = watch::channel(false);
        let start = live_seq(clock::now_unix());
        let mut body = Box::pin(messages(start.saturating_sub(3), ended));
        for seq in start.saturating_sub(3)..start {
            let frame = body.next().await.unwrap().unwrap();
            assert_eq!(frame.into_data().unwrap(), format!("{seq}\n"));
        }
        end.send(true).unwrap();
        assert!(body.next().await.is_none());
    }
}
