//! Property tests of the answer reader (issue 15, "no input panics"): whatever a runner or
//! anything else listening on its port sends back, in whatever pieces it arrives, the reader
//! answers or fails with a [`Failure`]; it never panics, never hands back more than
//! `MAX_ANSWER` bytes, and reads well-formed answers back exactly.

use std::pin::Pin;
use std::task::{Context, Poll};

use proptest::prelude::*;
use tokio::io::ReadBuf;

use super::*;

/// Cases per property: a few seconds for the file in a debug build.
const CASES: u32 = 512;

/// Answers that arrive in pieces of the given sizes (the last size repeats), then the
/// connection closes. No piece crosses `stop`: the bytes after it are a second answer, which
/// a server sends only once the first one was read (and the next request sent).
struct Pieces {
    data: Vec<u8>,
    at: usize,
    stop: usize,
    sizes: Vec<usize>,
    next: usize,
}

impl Pieces {
    fn new(data: Vec<u8>, sizes: Vec<usize>) -> Self {
        Self {
            stop: data.len(),
            data,
            at: 0,
            sizes,
            next: 0,
        }
    }
}

impl AsyncRead for Pieces {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let size = this
            .sizes
            .get(this.next)
            .or(this.sizes.last())
            .copied()
            .unwrap_or(usize::MAX)
            .max(1);
        this.next += 1;
        let end = if this.at < this.stop {
            this.stop
        } else {
            this.data.len()
        };
        let n = size.min(buf.remaining()).min(end - this.at);
        buf.put_slice(&this.data[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

/// What the reader makes of `data` arriving in pieces of `sizes`.
fn read(data: Vec<u8>, sizes: Vec<usize>) -> Result<(Answer, bool), Failure> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    rt.block_on(async { read_answer(&mut Pieces::new(data, sizes)).await })
}

fn pieces() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..300, 0..12)
}

/// Chunk-size lines as a hostile or broken server might write them.
fn size_line() -> impl Strategy<Value = String> {
    prop_oneof![
        (0usize..64).prop_map(|n| format!("{n:x}")),
        (0usize..64).prop_map(|n| format!("{:x}", usize::MAX - n)),
        (0usize..64).prop_map(|n| format!("{:x}", MAX_ANSWER + n)),
        Just(String::from("ffffffffffffffff")),
        Just(String::from("1ffffffffffffffff")),
        Just(String::from("-1")),
        Just(String::from("+5")),
        Just(String::new()),
        (0usize..64).prop_map(|n| format!(" {n:x} ;name=\"v\"")),
        "[0-9a-fA-F;= xg-]{0,24}",
    ]
}

/// Header lines that decide the framing, with values from sane to hostile.
fn header() -> impl Strategy<Value = String> {
    let length = prop_oneof![
        (0usize..400).prop_map(|n| n.to_string()),
        (0usize..64).prop_map(|n| (usize::MAX - n).to_string()),
        Just(u128::MAX.to_string()),
        Just(String::from("-1")),
        Just(String::from("+3")),
        Just(String::from("1, 1")),
        "[0-9 ,+-]{0,24}",
    ];
    prop_oneof![
        length.prop_map(|v| format!("content-length: {v}")),
        Just(String::from("transfer-encoding: chunked")),
        Just(String::from("Transfer-Encoding: gzip, chunked")),
        Just(String::from("connection: close")),
        Just(String::from("connection: keep-alive")),
        "x-[a-z]{1,8}: [ -~]{0,40}",
    ]
}

fn adversarial_answer() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            Just("HTTP/1.1 200 OK"),
            Just("HTTP/1.0 200 OK"),
            Just("HTTP/1.1 999 ?"),
            Just("HTTP/1.1 204 No Content"),
        ],
        prop::collection::vec(header(), 0..5),
        prop::collection::vec(
            (size_line(), prop::collection::vec(any::<u8>(), 0..80)),
            0..5,
        ),
        prop::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(status, headers, chunks, tail)| {
            let mut a = format!("{status}\r\n");
            for h in headers {
                a.push_str(&h);
                a.push_str("\r\n");
            }
            a.push_str("\r\n");
            let mut a = a.into_bytes();
            for (size, data) in chunks {
                a.extend_from_slice(size.as_bytes());
                a.extend_from_slice(b"\r\n");
                a.extend_from_slice(&data);
                a.extend_from_slice(b"\r\n");
            }
            a.extend_from_slice(&tail);
            a
        })
}

/// A well-formed answer: status, body, and the body sent chunked (cut at these lengths, with
/// chunk extensions and trailer fields or not) or with a content-length.
#[derive(Debug, Clone)]
struct Wellformed {
    status: u16,
    body: Vec<u8>,
    chunks: Option<(Vec<usize>, bool)>,
}

impl Wellformed {
    fn bytes(&self) -> Vec<u8> {
        let mut a = format!("HTTP/1.1 {} Whatever\r\nx-a: b\r\n", self.status).into_bytes();
        match &self.chunks {
            None => {
                a.extend_from_slice(
                    format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes(),
                );
                a.extend_from_slice(&self.body);
            }
            Some((cuts, extensions)) => {
                a.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
                let mut rest = self.body.as_slice();
                let mut cuts = cuts.iter();
                while !rest.is_empty() {
                    let n = cuts
                        .next()
                        .copied()
                        .unwrap_or(usize::MAX)
                        .clamp(1, rest.len());
                    let ext = if *extensions { ";x=y" } else { "" };
                    a.extend_from_slice(format!("{n:X}{ext}\r\n").as_bytes());
                    a.extend_from_slice(&rest[..n]);
                    a.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                }
                let trailers: &[u8] = if *extensions {
                    b"x-t: 1\r\ny: \r\n"
                } else {
                    b""
                };
                a.extend_from_slice(b"0\r\n");
                a.extend_from_slice(trailers);
                a.extend_from_slice(b"\r\n");
            }
        }
        a
    }
}

fn wellformed() -> impl Strategy<Value = Wellformed> {
    (
        100u16..=599,
        prop::collection::vec(any::<u8>(), 0..600),
        prop::option::of((prop::collection::vec(1usize..200, 0..8), any::<bool>())),
    )
        .prop_map(|(status, body, chunks)| Wellformed {
            status,
            body,
            chunks,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Arbitrary bytes, alone or after a valid status line: an answer or a failure.
    #[test]
    fn p01_arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        with_status_line in any::<bool>(),
        sizes in pieces(),
    ) {
        let mut data = if with_status_line { b"HTTP/1.1 200 OK\r\n".to_vec() } else { Vec::new() };
        data.extend_from_slice(&bytes);
        if let Ok((answer, _)) = read(data, sizes) {
            prop_assert!(answer.body.len() <= MAX_ANSWER);
        }
    }

    /// Hostile framing (content-lengths and chunk sizes near usize::MAX, signs, junk, chunks
    /// that lie about their size), cut anywhere: an answer within the limit or a failure
    /// that says what was wrong.
    #[test]
    fn p02_hostile_framing_is_a_failure_not_a_panic(
        answer in adversarial_answer(),
        cut in any::<prop::sample::Index>(),
        sizes in pieces(),
    ) {
        let end = cut.index(answer.len() + 1);
        match read(answer[..end].to_vec(), sizes) {
            Ok((answer, _)) => prop_assert!(answer.body.len() <= MAX_ANSWER),
            Err(Failure::Bad(reason) | Failure::Broken(reason)) => prop_assert!(!reason.is_empty()),
            Err(Failure::ClosedBeforeAnswer) => prop_assert_eq!(end, 0),
        }
    }

    /// A well-formed answer, by length or chunked, reads back exactly, and the connection is
    /// kept; the same answer cut short anywhere is a failure, never a shorter body.
    #[test]
    fn p03_wellformed_answers_read_back_and_cut_ones_fail(
        answer in wellformed(),
        cut in any::<prop::sample::Index>(),
        sizes in pieces(),
    ) {
        let bytes = answer.bytes();
        let (read_back, kept) = read(bytes.clone(), sizes.clone()).expect("a well-formed answer");
        prop_assert_eq!(read_back.status, answer.status);
        prop_assert_eq!(&read_back.body, &answer.body);
        prop_assert!(kept);
        let end = cut.index(bytes.len());
        prop_assert!(read(bytes[..end].to_vec(), sizes).is_err(), "cut at {} of {}", end, bytes.len());
    }

    /// Two well-formed answers in turn on one kept-alive connection both read back: the
    /// first is read to its very end (trailer fields included), and not a byte further.
    #[test]
    fn p04_answers_in_turn_on_one_connection_read_back(
        first in wellformed(),
        second in wellformed(),
        sizes in pieces(),
    ) {
        let mut data = first.bytes();
        let stop = data.len();
        data.extend_from_slice(&second.bytes());
        let mut stream = Pieces { stop, ..Pieces::new(data, sizes) };
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        let (a, kept) = rt.block_on(read_answer(&mut stream)).expect("the first answer");
        prop_assert!(kept);
        prop_assert_eq!(&a.body, &first.body);
        let (b, _) = rt.block_on(read_answer(&mut stream)).expect("the second answer");
        prop_assert_eq!((b.status, &b.body), (second.status, &second.body));
    }
}

/// What p03 and p04 found (before the fix the reader took the two bytes after the last
/// chunk's size line for its end, whatever they were, and left the trailer on the connection):
/// the trailer is read to its end, and a chunk that does not end where its size says is a
/// bad answer.
#[test]
fn trailers_are_read_to_their_end_and_a_chunk_must_end_with_crlf() {
    let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
    let with_trailer = format!("{head}2\r\nhi\r\n0\r\nx-t: 1\r\n\r\n");
    let (a, kept) = read(with_trailer.clone().into_bytes(), vec![]).expect("trailer");
    assert_eq!((a.body.as_slice(), kept), (&b"hi"[..], true));
    let cut = &with_trailer.as_bytes()[..with_trailer.len() - 2];
    assert!(matches!(
        read(cut.to_vec(), vec![]),
        Err(Failure::Broken(_))
    ));
    let overlong = format!("{head}2\r\nhiXY0\r\n\r\n");
    match read(overlong.into_bytes(), vec![]) {
        Err(Failure::Bad(reason)) => assert!(reason.contains("not followed by CRLF"), "{reason}"),
        other => panic!("a bad answer, not {other:?}"),
    }
    let endless = format!("{head}0\r\n{}", "x-t: 1\r\n".repeat(200));
    assert!(matches!(
        read(endless.into_bytes(), vec![]),
        Err(Failure::Bad(_))
    ));
}
