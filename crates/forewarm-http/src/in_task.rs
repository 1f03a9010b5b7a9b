//! A minimal HTTP/1.1 client run inside the calling task (the runner protocol, and the load
//! generator's requests to a node).
//!
//! A runner serves one invocation at a time and a lease gives its container to one request,
//! so there is nothing to multiplex: the request task writes the request and reads the answer
//! on a kept-alive `TcpStream` of its own. hyper's pooled client runs every connection as a
//! task of its own, which costs two task wake-ups per invocation (request in, answer out); on
//! the warm path those wake-ups were a large share of the node's CPU per request (see
//! docs/benchmarks.md, "warm no-op throughput").
//!
//! What it speaks: requests with a `content-length` body; answers framed by `content-length`
//! or `transfer-encoding: chunked`, kept alive unless the runner says `connection: close`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::HttpError;

/// Largest answer head or body accepted.
const MAX_ANSWER: usize = 4 << 20;
/// Idle connections kept per endpoint.
const IDLE_PER_ENDPOINT: usize = 4;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A client that runs each exchange in the calling task, with kept-alive connections by
/// endpoint.
#[derive(Debug, Default)]
pub struct InTaskClient {
    idle: Mutex<HashMap<SocketAddr, Vec<TcpStream>>>,
}

/// An answer: status code and body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

/// How an exchange failed.
#[derive(Debug)]
enum Failure {
    /// The connection was closed before any byte of an answer came: a kept-alive connection
    /// the server had closed, so the request was not handled and can be sent again.
    ClosedBeforeAnswer,
    /// The connection broke (or closed) after the request was written.
    Broken(String),
    /// The answer is not HTTP this client reads.
    Bad(String),
}

impl Failure {
    fn at(self, endpoint: SocketAddr) -> HttpError {
        let endpoint = endpoint.to_string();
        match self {
            Failure::ClosedBeforeAnswer => HttpError::NoAnswer {
                endpoint,
                reason: String::from("the connection closed without an answer"),
            },
            Failure::Broken(reason) => HttpError::NoAnswer { endpoint, reason },
            Failure::Bad(reason) => HttpError::Protocol { endpoint, reason },
        }
    }
}

impl InTaskClient {
    fn take(&self, endpoint: SocketAddr) -> Option<TcpStream> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.get_mut(&endpoint).and_then(Vec::pop)
    }

    fn put(&self, endpoint: SocketAddr, stream: TcpStream) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(endpoint).or_default();
        if list.len() < IDLE_PER_ENDPOINT {
            list.push(stream);
        }
    }

    /// Forget the connections to an endpoint that is gone.
    pub fn forget(&self, endpoint: SocketAddr) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.remove(&endpoint);
    }

    /// One request (`method path`, JSON `body`) to `endpoint`; an error says what failed.
    pub async fn exchange(
        &self,
        endpoint: SocketAddr,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Answer, HttpError> {
        self.exchange_as(endpoint, method, path, None, body).await
    }

    /// [`Self::exchange`] with a bearer token (a node's API: the benchmarks' load generator).
    pub async fn exchange_as(
        &self,
        endpoint: SocketAddr,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: &[u8],
    ) -> Result<Answer, HttpError> {
        let auth = bearer.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {endpoint}\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let mut request = Vec::with_capacity(head.len() + body.len());
        request.extend_from_slice(head.as_bytes());
        request.extend_from_slice(body);

        let on_kept = match self.take(endpoint) {
            Some(stream) => match exchange_on(stream, &request).await {
                // A stale kept-alive connection: the request never reached the server.
                Err(Failure::ClosedBeforeAnswer) => None,
                done => Some(done),
            },
            None => None,
        };
        let done = match on_kept {
            Some(done) => done,
            None => {
                let connect = |reason: String| HttpError::Connect {
                    endpoint: endpoint.to_string(),
                    reason,
                };
                let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(endpoint))
                    .await
                    .map_err(|_| connect(format!("no connection within {CONNECT_TIMEOUT:?}")))?
                    .map_err(|e| connect(e.to_string()))?;
                stream
                    .set_nodelay(true)
                    .map_err(|e| connect(e.to_string()))?;
                exchange_on(stream, &request).await
            }
        };
        let (answer, stream) = done.map_err(|failure| failure.at(endpoint))?;
        if let Some(s) = stream {
            self.put(endpoint, s);
        }
        Ok(answer)
    }
}

/// Send `request` on `stream` and read one answer; gives the stream back when it may be
/// reused.
async fn exchange_on(
    mut stream: TcpStream,
    request: &[u8],
) -> Result<(Answer, Option<TcpStream>), Failure> {
    let io = |e: std::io::Error| Failure::Broken(e.to_string());
    if let Err(e) = stream.write_all(request).await {
        return Err(match e.kind() {
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => {
                Failure::ClosedBeforeAnswer
            }
            _ => io(e),
        });
    }
    let (answer, reusable) = read_answer(&mut stream).await?;
    Ok((answer, reusable.then_some(stream)))
}

/// Read one answer from `stream`; also says whether the connection may carry another
/// exchange (kept alive, and the answer's end was framed rather than the connection's close).
async fn read_answer<S: AsyncRead + Unpin>(stream: &mut S) -> Result<(Answer, bool), Failure> {
    let io = |e: std::io::Error| Failure::Broken(e.to_string());
    let mut buf = Vec::with_capacity(1024);
    // The head.
    let (status, head_len, framing, keep_alive) = loop {
        let n = read_some(stream, &mut buf).await;
        match n {
            Ok(0) if buf.is_empty() => return Err(Failure::ClosedBeforeAnswer),
            Err(e) if buf.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Err(Failure::ClosedBeforeAnswer);
            }
            Ok(0) => return Err(Failure::Broken(String::from("closed mid-answer"))),
            Err(e) => return Err(io(e)),
            Ok(_) => {}
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut headers);
        match parsed.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let status = parsed.code.unwrap_or(0);
                let mut framing = Framing::UntilClose;
                let mut keep_alive = parsed.version == Some(1);
                for h in parsed.headers.iter() {
                    let value = std::str::from_utf8(h.value).unwrap_or("").trim();
                    if h.name.eq_ignore_ascii_case("content-length") {
                        let n = value
                            .parse()
                            .map_err(|_| Failure::Bad(format!("content-length {value:?}")))?;
                        framing = Framing::Length(n);
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding")
                        && value.eq_ignore_ascii_case("chunked")
                    {
                        framing = Framing::Chunked;
                    } else if h.name.eq_ignore_ascii_case("connection") {
                        keep_alive = !value.eq_ignore_ascii_case("close");
                    }
                }
                break (status, len, framing, keep_alive);
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_ANSWER => {}
            Ok(httparse::Status::Partial) => {
                return Err(Failure::Bad(String::from("head too large")));
            }
            Err(e) => return Err(Failure::Bad(e.to_string())),
        }
    };
    buf.drain(..head_len);
    let body = match framing {
        Framing::Length(n) if n > MAX_ANSWER => {
            return Err(Failure::Bad(format!(
                "content-length {n} is over the limit of {MAX_ANSWER} bytes"
            )));
        }
        Framing::Length(n) => {
            while buf.len() < n {
                if read_some(stream, &mut buf).await.map_err(io)? == 0 {
                    return Err(Failure::Broken(String::from("closed mid-answer")));
                }
            }
            buf.truncate(n);
            buf
        }
        Framing::Chunked => read_chunked(stream, buf).await?,
        Framing::UntilClose => {
            while read_some(stream, &mut buf).await.map_err(io)? != 0 {
                if buf.len() > MAX_ANSWER {
                    return Err(Failure::Bad(String::from("answer too large")));
                }
            }
            return Ok((Answer { status, body: buf }, false));
        }
    };
    Ok((Answer { status, body }, keep_alive))
}

#[derive(Debug, Clone, Copy)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

async fn read_some<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> std::io::Result<usize> {
    buf.reserve(4096);
    stream.read_buf(buf).await
}

/// Decode a chunked body whose first bytes are in `buf`, up to the end of its trailer.
async fn read_chunked<S: AsyncRead + Unpin>(
    stream: &mut S,
    mut buf: Vec<u8>,
) -> Result<Vec<u8>, Failure> {
    let io = |e: std::io::Error| Failure::Broken(e.to_string());
    let mut body = Vec::new();
    loop {
        let line_end = read_line(stream, &mut buf, "chunk size").await?;
        let line = std::str::from_utf8(&buf[..line_end]).unwrap_or("");
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| Failure::Bad(format!("bad chunk size {size_text:?}")))?;
        buf.drain(..line_end + 2);
        if size == 0 {
            // The trailer: fields, if any, up to an empty line. Read to its end, so that a
            // kept-alive connection starts the next answer where it starts.
            let mut trailer = 0;
            loop {
                let line_end = read_line(stream, &mut buf, "trailer").await?;
                buf.drain(..line_end + 2);
                if line_end == 0 {
                    return Ok(body);
                }
                trailer += line_end + 2;
                if trailer > 1024 {
                    return Err(Failure::Bad(String::from("trailer over 1 KiB")));
                }
            }
        }
        // Checked before any arithmetic on `size`: a size near usize::MAX must not overflow.
        if size > MAX_ANSWER - body.len() {
            return Err(Failure::Bad(String::from("answer too large")));
        }
        // The chunk and its CRLF.
        while buf.len() < size + 2 {
            if read_some(stream, &mut buf).await.map_err(io)? == 0 {
                return Err(Failure::Broken(String::from("closed mid-chunk")));
            }
        }
        if &buf[size..size + 2] != b"\r\n" {
            return Err(Failure::Bad(format!(
                "a chunk of {size} bytes is not followed by CRLF"
            )));
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

/// The length of the line at the start of `buf` (reading more as needed), without its CRLF;
/// a line is at most 1 KiB (`what` names it in the error).
async fn read_line<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    what: &str,
) -> Result<usize, Failure> {
    loop {
        if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
            return Ok(i);
        }
        if buf.len() > 1024 {
            return Err(Failure::Bad(format!("{what} line over 1 KiB")));
        }
        let read = read_some(stream, buf)
            .await
            .map_err(|e| Failure::Broken(e.to_string()))?;
        if read == 0 {
            return Err(Failure::Broken(format!("closed mid-{what} line")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that answers each request on a connection with the next canned answer.
    async fn serve(answers: Vec<&'static [u8]>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            for answer in answers {
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                s.write_all(answer).await.expect("write");
            }
        });
        addr
    }

    #[tokio::test]
    async fn t01_content_length_and_keep_alive() {
        let addr = serve(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi",
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad",
        ])
        .await;
        let pool = InTaskClient::default();
        let a = pool
            .exchange(addr, "POST", "/invoke", b"{}")
            .await
            .expect("first");
        assert_eq!((a.status, a.body.as_slice()), (200, &b"hi"[..]));
        // The same connection (the server accepts only one) serves the second request.
        let b = pool
            .exchange(addr, "GET", "/ready", b"")
            .await
            .expect("second");
        assert_eq!((b.status, b.body.as_slice()), (400, &b"bad"[..]));
    }

    #[tokio::test]
    async fn t02_chunked() {
        let addr = serve(vec![
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        ])
        .await;
        let a = InTaskClient::default()
            .exchange(addr, "POST", "/invoke", b"{}")
            .await
            .expect("chunked");
        assert_eq!(a.body, b"abcde");
    }

    #[tokio::test]
    async fn t03_stale_connection_is_retried_on_a_fresh_one() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            // First connection: one answer, then closed (as a runner that restarted).
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = vec![0u8; 4096];
            let _ = s.read(&mut buf).await;
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n1")
                .await
                .expect("write");
            drop(s);
            let (mut s, _) = listener.accept().await.expect("accept 2");
            let _ = s.read(&mut buf).await;
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n2")
                .await
                .expect("write 2");
        });
        let pool = InTaskClient::default();
        let a = pool
            .exchange(addr, "POST", "/invoke", b"{}")
            .await
            .expect("a");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let b = pool
            .exchange(addr, "POST", "/invoke", b"{}")
            .await
            .expect("b");
        assert_eq!((a.body, b.body), (b"1".to_vec(), b"2".to_vec()));
    }

    #[tokio::test]
    async fn t04_garbage_and_refused_are_errors() {
        let addr = serve(vec![b"SMTP ready\r\n\r\n"]).await;
        let pool = InTaskClient::default();
        let e = pool
            .exchange(addr, "GET", "/ready", b"")
            .await
            .expect_err("garbage is an error");
        assert!(matches!(e, HttpError::Protocol { .. }), "{e}");
        assert!(!e.not_sent() && !e.is_retryable(), "{e}");
        let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let gone = closed.local_addr().expect("addr");
        drop(closed);
        let e = pool
            .exchange(gone, "GET", "/ready", b"")
            .await
            .expect_err("nothing listens");
        assert!(matches!(e, HttpError::Connect { .. }), "{e}");
        assert!(e.not_sent() && e.is_retryable(), "{e}");
    }

    #[tokio::test]
    async fn t05_an_answer_cut_off_may_have_run() {
        let addr = serve(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf"]).await;
        let e = InTaskClient::default()
            .exchange(addr, "POST", "/invoke", b"{}")
            .await
            .expect_err("cut off");
        assert!(matches!(e, HttpError::NoAnswer { .. }), "{e}");
        assert!(!e.not_sent() && e.is_retryable(), "{e}");
    }

    #[tokio::test]
    async fn t06_a_huge_chunk_size_is_a_bad_answer_not_a_panic() {
        let addr = serve(vec![
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\nffffffffffffffff\r\nx\r\n",
        ])
        .await;
        let e = InTaskClient::default()
            .exchange(addr, "POST", "/invoke", b"{}")
            .await
            .expect_err("refused");
        assert!(matches!(e, HttpError::Protocol { .. }), "{e}");
    }
}

#[cfg(test)]
#[path = "in_task_props.rs"]
mod props;
