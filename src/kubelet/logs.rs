//! Container log files in the CRI format the kubelet writes
//! (`2026-11-23T21:00:00.123456789Z stdout F the line`): the writer a guest's
//! stdout and stderr go through, and the reader `pods/log` renders from
//! (`timestamps`, `sinceSeconds`/`sinceTime`, `tailLines`, `limitBytes`).

use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use super::runtime::Output;

/// A line longer than this is written as partial (`P`) records, as CRI does.
const MAX_LINE: usize = 16 * 1024;

/// One of a container's output streams, writing CRI records to the shared file.
#[derive(Clone)]
struct Stream {
    file: Arc<Mutex<std::fs::File>>,
    name: &'static str,
}

impl IsTerminal for Stream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Stream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            stream: self.clone(),
            pending: Vec::new(),
        })
    }
}

/// Cuts what the guest writes into lines and writes each as a record.
struct LineWriter {
    stream: Stream,
    pending: Vec<u8>,
}

impl LineWriter {
    fn record(&self, line: &[u8], tag: char) -> std::io::Result<()> {
        let mut rec = Vec::with_capacity(line.len() + 48);
        write!(
            rec,
            "{} {} {tag} ",
            timestamp(jiff::Timestamp::now()),
            self.stream.name
        )?;
        rec.extend_from_slice(line);
        rec.push(b'\n');
        let mut file = self
            .stream
            .file
            .lock()
            .map_err(|_| std::io::Error::other("log file lock poisoned"))?;
        file.write_all(&rec)
    }

    fn drain(&mut self, all: bool) -> std::io::Result<()> {
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.record(&line[..end], 'F')?;
        }
        while self.pending.len() >= MAX_LINE {
            let part: Vec<u8> = self.pending.drain(..MAX_LINE).collect();
            self.record(&part, 'P')?;
        }
        if all && !self.pending.is_empty() {
            // The guest ended without a newline: a partial record, shown as is.
            let rest = std::mem::take(&mut self.pending);
            self.record(&rest, 'P')?;
        }
        Ok(())
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.pending.extend_from_slice(buf);
        Poll::Ready(self.drain(false).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.drain(true))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        // A last line without its newline is still the guest's output.
        let _ = self.drain(true);
    }
}

/// Create (truncate) a container run's log file; returns its stdout and stderr.
pub fn create(path: &std::path::Path) -> std::io::Result<(Output, Output)> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = Arc::new(Mutex::new(std::fs::File::create(path)?));
    let stream = |name| Stream {
        file: file.clone(),
        name,
    };
    Ok((Box::new(stream("stdout")), Box::new(stream("stderr"))))
}

/// RFC 3339 with nanoseconds, as CRI and `kubectl logs --timestamps` print it.
fn timestamp(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S.%fZ").to_string()
}

/// What `pods/log` asks for.
#[derive(Debug, Default, Clone)]
pub struct View {
    /// Prefix each line with its timestamp.
    pub timestamps: bool,
    /// Only lines written at or after this instant.
    pub since: Option<jiff::Timestamp>,
    /// Only the last N lines.
    pub tail: Option<u64>,
    /// At most this many bytes.
    pub limit_bytes: Option<u64>,
}

/// One parsed record.
struct Record<'a> {
    time: &'a str,
    at: Option<jiff::Timestamp>,
    partial: bool,
    text: &'a str,
}

fn parse(line: &str) -> Option<Record<'_>> {
    let (time, rest) = line.split_once(' ')?;
    let (_stream, rest) = rest.split_once(' ')?;
    let (tag, text) = rest.split_once(' ').unwrap_or((rest, ""));
    Some(Record {
        time,
        at: time.parse().ok(),
        partial: tag == "P",
        text,
    })
}

/// Render complete CRI records (whole lines) as `kubectl logs` shows them.
pub fn render(records: &str, view: &View) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut joined = String::new();
    for rec in records.lines().filter_map(parse) {
        if view
            .since
            .is_some_and(|since| rec.at.is_some_and(|at| at < since))
        {
            continue;
        }
        if joined.is_empty() && view.timestamps {
            joined.push_str(rec.time);
            joined.push(' ');
        }
        joined.push_str(rec.text);
        if !rec.partial {
            joined.push('\n');
            lines.push(std::mem::take(&mut joined));
        }
    }
    if !joined.is_empty() {
        lines.push(joined);
    }
    let skip = view.tail.map_or(0, |n| {
        lines
            .len()
            .saturating_sub(usize::try_from(n).unwrap_or(usize::MAX))
    });
    let mut out: String = lines[skip..].concat();
    if let Some(limit) = view.limit_bytes.and_then(|l| usize::try_from(l).ok())
        && out.len() > limit
    {
        let mut cut = limit;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// The length of the complete records at the start of `bytes` (up to the last
/// newline): what a follower can render now.
pub fn complete(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn guest_output_becomes_cri_records_and_renders_back() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("c/0.log");
        let (out, err) = create(&path).expect("log file");
        let mut o = Box::into_pin(out.async_stream());
        let mut e = Box::into_pin(err.async_stream());
        o.write_all(b"one\ntw").await.expect("write");
        e.write_all(b"oops\n").await.expect("write");
        o.write_all(b"o\nno newline").await.expect("write");
        drop(o);
        drop(e);
        let text = std::fs::read_to_string(&path).expect("read");
        let tags: Vec<&str> = text
            .lines()
            .map(|l| l.split(' ').nth(1).unwrap_or(""))
            .collect();
        assert_eq!(tags, ["stdout", "stderr", "stdout", "stdout"], "{text}");
        let kinds: Vec<&str> = text.lines().filter_map(|l| l.split(' ').nth(2)).collect();
        assert_eq!(kinds, ["F", "F", "F", "P"], "{text}");
        let plain = render(&text, &View::default());
        assert_eq!(plain, "one\noops\ntwo\nno newline");
        let stamped = render(
            &text,
            &View {
                timestamps: true,
                tail: Some(1),
                ..View::default()
            },
        );
        assert!(
            stamped.ends_with("Z no newline") && stamped.starts_with("20"),
            "{stamped}"
        );
    }

    #[test]
    fn since_tail_limit_and_partial_lines() {
        let text = "2026-01-01T00:00:00.000000001Z stdout P a\n\
                    2026-01-01T00:00:00.000000002Z stdout F b\n\
                    2026-01-01T00:00:05.000000000Z stderr F late\n";
        assert_eq!(render(text, &View::default()), "ab\nlate\n");
        let since = "2026-01-01T00:00:01Z".parse().ok();
        assert_eq!(
            render(
                text,
                &View {
                    since,
                    ..View::default()
                }
            ),
            "late\n"
        );
        let limited = View {
            limit_bytes: Some(2),
            ..View::default()
        };
        assert_eq!(render(text, &limited), "ab");
        assert_eq!(complete(b"x\ny"), 2);
    }
}
