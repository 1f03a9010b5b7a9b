//! Invocation ids: a client's retry of an invocation that may have run is answered from the
//! first run instead of running again.
//!
//! Every invocation has an id: the client's `Idempotency-Key` header, else one the node makes
//! up (answered in `x-forewarm-invocation-id`). Per tenant and key the node remembers, for
//! [`KEEP`], the answer of an invocation that may have run (2xx, 502, 504); a request with a
//! key whose invocation is still running is refused (409 `in_progress`), one whose answer is
//! remembered gets that answer again (`x-forewarm-replayed: true`) and runs nothing. An
//! answer that says the invocation never reached a container (400s, 429, 503) is forgotten:
//! retrying it is safe and may succeed. The memory is the node's (a retry sent to another
//! node is not seen) and holds at most [`MAX_KEYS`] answers, the oldest dropped first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an answer is remembered.
pub const KEEP: Duration = Duration::from_secs(600);
/// Most answers remembered per node.
pub const MAX_KEYS: usize = 100_000;
/// Longest key accepted, bytes.
pub const MAX_KEY_LEN: usize = 128;

/// A remembered answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    /// HTTP status.
    pub status: u16,
    /// `x-forewarm-start`, if any.
    pub start: Option<String>,
    /// Body.
    pub body: Vec<u8>,
}

#[derive(Debug)]
enum State {
    Running,
    Done(Remembered),
}

#[derive(Debug, Default)]
struct Book {
    by_key: HashMap<(String, String), (State, Instant)>,
    /// Keys with a remembered answer, oldest first (for expiry and the size bound).
    done: VecDeque<((String, String), Instant)>,
}

/// What [`Ids::begin`] found.
#[derive(Debug)]
pub enum Begun {
    /// A new invocation: run it, then [`Running::finish`].
    Run(Running),
    /// The same key is running now.
    InProgress,
    /// The same key ran: its answer.
    Replay(Remembered),
}

/// The node's invocation ids.
#[derive(Debug, Default)]
pub struct Ids {
    book: Mutex<Book>,
}

/// An invocation running under a key; dropped without [`Running::finish`], the key is
/// forgotten (as after an answer that says it never ran).
#[derive(Debug)]
pub struct Running {
    ids: Arc<Ids>,
    key: Option<(String, String)>,
}

/// Whether `key` is an acceptable `Idempotency-Key`: 1 to [`MAX_KEY_LEN`] visible ASCII
/// characters.
pub fn valid_key(key: &str) -> bool {
    (1..=MAX_KEY_LEN).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// A fresh invocation id: 32 hex digits.
pub fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Whether an answer of `status` says the invocation may have run (and so is remembered).
pub fn may_have_run(status: u16) -> bool {
    (200..300).contains(&status) || status == 502 || status == 504
}

impl Ids {
    /// No key seen yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An invocation of `tenant` with `key` arrives at `now`.
    pub fn begin(self: &Arc<Self>, tenant: &str, key: &str, now: Instant) -> Begun {
        let mut book = self.lock();
        // Forget what expired.
        while let Some((k, at)) = book.done.front() {
            if now.saturating_duration_since(*at) < KEEP && book.done.len() <= MAX_KEYS {
                break;
            }
            let k = k.clone();
            book.done.pop_front();
            if matches!(book.by_key.get(&k), Some((State::Done(_), _))) {
                book.by_key.remove(&k);
            }
        }
        let k = (tenant.to_owned(), key.to_owned());
        match book.by_key.get(&k) {
            Some((State::Running, _)) => Begun::InProgress,
            Some((State::Done(answer), _)) => Begun::Replay(answer.clone()),
            None => {
                book.by_key.insert(k.clone(), (State::Running, now));
                Begun::Run(Running {
                    ids: self.clone(),
                    key: Some(k),
                })
            }
        }
    }
}

impl Running {
    /// The invocation was answered `answer` at `now`: remembered if it may have run.
    pub fn finish(mut self, answer: Remembered, now: Instant) {
        let Some(k) = self.key.take() else {
            return;
        };
        let mut book = self.ids.lock();
        if may_have_run(answer.status) {
            book.by_key.insert(k.clone(), (State::Done(answer), now));
            book.done.push_back((k, now));
        } else {
            book.by_key.remove(&k);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.ids.lock().by_key.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16) -> Remembered {
        Remembered {
            status,
            start: Some("warm".into()),
            body: b"{}".to_vec(),
        }
    }

    #[test]
    fn t01_a_key_runs_once_and_its_answer_is_replayed_until_it_expires() {
        let ids = Ids::new();
        let t0 = Instant::now();
        let Begun::Run(running) = ids.begin("a", "k1", t0) else {
            panic!("a new key runs");
        };
        assert!(matches!(ids.begin("a", "k1", t0), Begun::InProgress));
        // Another tenant's key of the same name is another invocation.
        assert!(matches!(ids.begin("b", "k1", t0), Begun::Run(_)));
        running.finish(answer(200), t0);
        let Begun::Replay(a) = ids.begin("a", "k1", t0 + Duration::from_secs(1)) else {
            panic!("the answer is replayed");
        };
        assert_eq!(a, answer(200));
        assert!(matches!(ids.begin("a", "k1", t0 + KEEP), Begun::Run(_)));
    }

    #[test]
    fn t02_an_answer_that_never_ran_is_forgotten_and_may_be_retried() {
        let ids = Ids::new();
        let t0 = Instant::now();
        for status in [429, 503, 400] {
            let Begun::Run(running) = ids.begin("a", "k", t0) else {
                panic!("runs");
            };
            running.finish(answer(status), t0);
        }
        // Dropped unfinished: forgotten too.
        let Begun::Run(running) = ids.begin("a", "k", t0) else {
            panic!("runs");
        };
        drop(running);
        let Begun::Run(running) = ids.begin("a", "k", t0) else {
            panic!("runs");
        };
        running.finish(answer(504), t0);
        assert!(matches!(ids.begin("a", "k", t0), Begun::Replay(a) if a.status == 504));
    }

    #[test]
    fn t03_keys_are_visible_ascii_of_bounded_length() {
        assert!(valid_key("order-42/retry"));
        assert!(!valid_key(""));
        assert!(!valid_key("has space"));
        assert!(!valid_key(&"x".repeat(MAX_KEY_LEN + 1)));
        assert!(!valid_key("é"));
    }
}
