//! Newline-delimited JSON from any `AsyncRead`: one event per line.
//!
//! Lines end with `\n` (a trailing `\r` is removed); blank lines are skipped; the last line
//! needs no newline. A line longer than the limit is skipped up to its newline and yielded as
//! [`Line::TooLong`], which the sink counts as dropped (unparseable) — a bad line never stops
//! the stream. Whether a line is a JSON object with a timestamp is the pipeline's question.

use std::io;

use bytes::{Bytes, BytesMut};
use futures::Stream;
use tokio::io::AsyncRead;
use tokio_util::codec::{Decoder, FramedRead};

use crate::event::{EventError, IntoEvent};

/// The default longest line, in bytes (1 MiB).
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

/// One line of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A line's bytes (without the line end).
    Event(Bytes),
    /// A line over the limit, skipped.
    TooLong {
        /// Its number, from 1.
        line: u64,
        /// The limit it exceeded.
        max: usize,
    },
}

impl IntoEvent for Line {
    fn into_event(self) -> Result<Bytes, EventError> {
        match self {
            Line::Event(raw) => Ok(raw),
            Line::TooLong { line, max } => Err(EventError::LineTooLong { line, max }),
        }
    }
}

/// The lines of `reader`, each at most [`DEFAULT_MAX_LINE_BYTES`]; ends at the first read error.
pub fn lines<R: AsyncRead>(reader: R) -> impl Stream<Item = io::Result<Line>> {
    lines_with_max(reader, DEFAULT_MAX_LINE_BYTES)
}

/// The lines of `reader`, each at most `max_line_bytes`.
pub fn lines_with_max<R: AsyncRead>(
    reader: R,
    max_line_bytes: usize,
) -> impl Stream<Item = io::Result<Line>> {
    FramedRead::new(reader, NdjsonCodec::new(max_line_bytes))
}

/// The lines of standard input.
pub fn stdin() -> impl Stream<Item = io::Result<Line>> {
    lines(tokio::io::stdin())
}

/// Splits bytes into [`Line`]s, skipping blank lines and bounding line length.
#[derive(Debug, Clone)]
pub struct NdjsonCodec {
    max: usize,
    line: u64,
    /// Bytes already searched for a newline.
    searched: usize,
    /// Inside an over-long line, dropping bytes until its newline.
    discarding: bool,
}

impl NdjsonCodec {
    /// A codec allowing lines of at most `max_line_bytes`.
    pub fn new(max_line_bytes: usize) -> Self {
        Self {
            max: max_line_bytes,
            line: 0,
            searched: 0,
            discarding: false,
        }
    }

    fn finish_line(&mut self, mut raw: BytesMut, too_long: bool) -> Option<Line> {
        self.line += 1;
        if too_long {
            return Some(Line::TooLong {
                line: self.line,
                max: self.max,
            });
        }
        if raw.last() == Some(&b'\r') {
            raw.truncate(raw.len() - 1);
        }
        if raw.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        Some(Line::Event(raw.freeze()))
    }
}

impl Decoder for NdjsonCodec {
    type Item = Line;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Option<Line>> {
        loop {
            let from = self.searched.min(buf.len());
            match buf[from..].iter().position(|b| *b == b'\n') {
                Some(offset) => {
                    let end = from + offset;
                    let mut raw = buf.split_to(end + 1);
                    raw.truncate(end);
                    self.searched = 0;
                    let too_long = std::mem::take(&mut self.discarding) || end > self.max;
                    if let Some(line) = self.finish_line(raw, too_long) {
                        return Ok(Some(line));
                    }
                }
                None => {
                    if buf.len() > self.max {
                        self.discarding = true;
                        buf.clear();
                    }
                    self.searched = buf.len();
                    return Ok(None);
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> io::Result<Option<Line>> {
        if let Some(line) = self.decode(buf)? {
            return Ok(Some(line));
        }
        if buf.is_empty() && !self.discarding {
            return Ok(None);
        }
        let raw = buf.split();
        self.searched = 0;
        let too_long = std::mem::take(&mut self.discarding);
        Ok(self.finish_line(raw, too_long))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    async fn read(input: &'static [u8], max: usize) -> Vec<Line> {
        lines_with_max(input, max)
            .map(|l| l.unwrap())
            .collect()
            .await
    }

    fn event(s: &'static str) -> Line {
        Line::Event(Bytes::from_static(s.as_bytes()))
    }

    #[tokio::test]
    async fn splits_lines_skips_blanks_and_keeps_the_last_line() {
        let lines = read(b"{\"a\":1}\r\n\n  \n{\"b\":2}\n{\"c\":3}", 100).await;
        assert_eq!(
            lines,
            [event("{\"a\":1}"), event("{\"b\":2}"), event("{\"c\":3}")]
        );
    }

    #[tokio::test]
    async fn an_over_long_line_is_reported_and_skipped() {
        let lines = read(
            b"{\"a\":1}\n0123456789abcdef\n{\"b\":2}\nxxxxxxxxxxxxxxxxxxxx",
            10,
        )
        .await;
        assert_eq!(
            lines,
            [
                event("{\"a\":1}"),
                Line::TooLong { line: 2, max: 10 },
                event("{\"b\":2}"),
                Line::TooLong { line: 4, max: 10 },
            ]
        );
    }

    #[tokio::test]
    async fn an_over_long_line_split_across_reads_is_skipped_whole() {
        let (mut tx, rx) = tokio::io::duplex(4);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            tx.write_all(b"{\"x\":1}\n").await.unwrap();
            tx.write_all(&[b'y'; 64]).await.unwrap();
            tx.write_all(b"\n{\"z\":2}\n").await.unwrap();
        });
        let lines: Vec<Line> = lines_with_max(rx, 16).map(|l| l.unwrap()).collect().await;
        writer.await.unwrap();
        assert_eq!(
            lines,
            [
                event("{\"x\":1}"),
                Line::TooLong { line: 2, max: 16 },
                event("{\"z\":2}")
            ]
        );
    }
}
