//! Answers to requests hyper cannot parse, given the error envelope like every other answer.
//!
//! hyper answers a request head it cannot read before any service sees it: 400 (a malformed
//! request line or header), 414 (a URI over its fixed 65,534-byte limit) or 431 (headers past
//! its buffer), each a bare head with `content-length: 0`, after which it closes the connection.
//! It offers no hook for these, so each connection's stream is wrapped in [`Enveloped`], which
//! recognises such a head as hyper writes it and writes in its place the same head with a JSON
//! body `{"error": "InvalidRequestError", "message": ...}`. Answers of the service itself always
//! carry a body (every error has its envelope), so none is mistaken for one.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use rafiki_types::error::{ErrorBody, ErrorName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection's stream whose writes of hyper's bare parse-error answers get a body.
pub struct Enveloped<S> {
    inner: S,
    /// A rewritten answer still being written, and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
}

impl<S> Enveloped<S> {
    /// Wraps a connection's stream.
    pub fn new(inner: S) -> Self {
        Enveloped {
            inner,
            pending: None,
        }
    }
}

/// hyper's automatic answers: status line, and what each means to the client.
const AUTOMATIC: [(&[u8], &str); 3] = [
    (
        b"HTTP/1.1 400 Bad Request\r\n",
        "The request is not well-formed HTTP/1.1 (its request line or a header).",
    ),
    (
        b"HTTP/1.1 414 URI Too Long\r\n",
        "The request's URI is longer than the server reads (65,534 bytes).",
    ),
    (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        "The request's headers are larger than the server reads.",
    ),
];

/// The enveloped version of `head` if it is, byte for byte, one of hyper's bare parse-error
/// answers: the status line, `connection: close`, `content-length: 0`, and a `date` header in
/// HTTP's fixed 29-character format, nothing else. The exact shape keeps a service's own
/// bytes (a downloaded file's, say) from being taken for one.
fn envelope(head: &[u8]) -> Option<Vec<u8>> {
    const FIXED: &[u8] = b"connection: close\r\ncontent-length: 0\r\ndate: ";
    let (status_line, message) = AUTOMATIC.iter().find(|(line, _)| head.starts_with(line))?;
    let date = head[status_line.len()..]
        .strip_prefix(FIXED)?
        .strip_suffix(b"\r\n\r\n")?;
    if date.len() != 29 || !date.ends_with(b" GMT") || date.contains(&b'\r') {
        return None;
    }
    let body = serde_json::to_vec(&ErrorBody {
        error: ErrorName::InvalidRequestError,
        message: (*message).to_owned(),
    })
    .ok()?;
    let mut answer = Vec::with_capacity(head.len() + body.len() + 64);
    answer.extend_from_slice(status_line);
    answer.extend_from_slice(b"connection: close\r\ncontent-type: application/json\r\n");
    answer.extend_from_slice(format!("content-length: {}\r\ndate: ", body.len()).as_bytes());
    answer.extend_from_slice(date);
    answer.extend_from_slice(b"\r\n\r\n");
    answer.extend_from_slice(&body);
    Some(answer)
}

impl<S: AsyncWrite + Unpin> Enveloped<S> {
    /// Writes what is left of a rewritten answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((answer, written)) = &mut self.pending {
            if *written == answer.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &answer[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Takes `head` as written if it is a bare parse-error answer, writing its envelope instead.
    fn poll_replace(&mut self, cx: &mut Context<'_>, head: &[u8]) -> Option<io::Result<usize>> {
        let answer = envelope(head)?;
        self.pending = Some((answer, 0));
        match self.poll_pending(cx) {
            Poll::Ready(Err(err)) => Some(Err(err)),
            // The rest is written at the next write, flush or shutdown.
            _ => Some(Ok(head.len())),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Enveloped<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Enveloped<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(replaced) = this.poll_replace(cx, buf) {
            return Poll::Ready(replaced);
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        // hyper's automatic answer is a head alone: one buffer.
        let mut non_empty = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(head), None) = (non_empty.next(), non_empty.next()) {
            if let Some(replaced) = this.poll_replace(cx, head) {
                return Poll::Ready(replaced);
            }
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_parse_error_answer_gets_the_envelope_and_keeps_its_head() {
        let head = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\n\
            date: Mon, 30 Nov 2026 00:20:43 GMT\r\n\r\n";
        let answer = String::from_utf8(envelope(head).unwrap()).unwrap();
        let (new_head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(
            new_head.starts_with("HTTP/1.1 414 URI Too Long\r\nconnection: close\r\n"),
            "{new_head}"
        );
        assert!(new_head.contains("content-type: application/json"));
        assert!(new_head.contains(&format!("content-length: {}", body.len())));
        assert!(new_head.ends_with("date: Mon, 30 Nov 2026 00:20:43 GMT"));
        let body: ErrorBody = serde_json::from_str(body).unwrap();
        assert_eq!(body.error, ErrorName::InvalidRequestError);
    }

    #[test]
    fn answers_with_a_body_or_another_status_are_left_alone() {
        let own = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\
            content-length: 2\r\n\r\n";
        assert!(envelope(own).is_none());
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(envelope(ok).is_none());
        let more = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\n\
            date: Mon, 30 Nov 2026 00:20:43 GMT\r\nx-other: 1\r\n\r\n";
        assert!(envelope(more).is_none());
        assert!(envelope(b"{\"error\": \"x\"}").is_none());
    }
}
