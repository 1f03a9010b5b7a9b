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
//!
//! A node with a store ([`Ids::durable`]) keeps the ids across a crash: a key is written to
//! the store before its invocation runs ([`Running::persist`]; if that fails, nothing runs)
//! and its answer after. A key found still running when the node starts again was cut off
//! by the crash: it may have run, so its retries get 502 `interrupted` and nothing runs
//! again (`chaos/kill-node-mid-invocation.py` checks it).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use forewarm_store::{SampleStore, StoreError};
use serde::{Deserialize, Serialize};

/// How long an answer is remembered.
pub const KEEP: Duration = Duration::from_secs(600);
/// Most answers remembered per node.
pub const MAX_KEYS: usize = 100_000;
/// Longest key accepted, bytes.
pub const MAX_KEY_LEN: usize = 128;

/// A remembered answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    /// HTTP status.
    pub status: u16,
    /// `x-forewarm-start`, if any.
    pub start: Option<String>,
    /// Body.
    pub body: Vec<u8>,
}

/// The store's record kind for invocation ids (key `tenant/key`).
const KIND: &str = "invocation";

/// A key's record in the store: written before its invocation runs, replaced by its answer.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    /// When it began, or was answered: ms since the Unix epoch.
    at_ms: u64,
    /// Its answer; none while it runs.
    answer: Option<Remembered>,
}

/// The answer to a key whose invocation was running when the node stopped.
fn interrupted() -> Remembered {
    Remembered {
        status: 502,
        start: None,
        body: br#"{"error":"interrupted","message":"the node stopped while this invocation ran: it may have run, so it is not run again"}"#.to_vec(),
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn store_id((tenant, key): &(String, String)) -> String {
    format!("{tenant}/{key}")
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
    /// Where they outlive the process, if anywhere.
    store: Option<Arc<SampleStore>>,
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
    /// No key seen yet, kept in memory only.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The ids `store` holds from earlier runs (a key still running there was cut off by a
    /// crash: [`interrupted`]); new ones are written to it. Expired records are removed.
    pub fn durable(store: Arc<SampleStore>) -> Result<Arc<Self>, StoreError> {
        let (now, now_ms) = (Instant::now(), unix_ms());
        let mut kept = Vec::new();
        let mut expired = Vec::new();
        for (id, stored) in store.records::<Stored>(KIND)? {
            let age = Duration::from_millis(now_ms.saturating_sub(stored.at_ms));
            match id.split_once('/') {
                Some((tenant, key)) if age < KEEP => {
                    let at = now.checked_sub(age).unwrap_or(now);
                    let answer = stored.answer.unwrap_or_else(interrupted);
                    kept.push((at, (tenant.to_owned(), key.to_owned()), answer));
                }
                _ => expired.push(id),
            }
        }
        store.remove_records(KIND, &expired)?;
        kept.sort_by_key(|(at, ..)| *at);
        let mut book = Book::default();
        for (at, k, answer) in kept {
            book.by_key.insert(k.clone(), (State::Done(answer), at));
            book.done.push_back((k, at));
        }
        Ok(Arc::new(Self {
            book: Mutex::new(book),
            store: Some(store),
        }))
    }

    /// Runs `write` on the store off the async threads; Ok without a store.
    async fn write(
        &self,
        write: impl FnOnce(&SampleStore) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<(), String> {
        let Some(store) = self.store.clone() else {
            return Ok(());
        };
        match tokio::task::spawn_blocking(move || write(&store)).await {
            Ok(written) => written.map_err(|e| e.to_string()),
            Err(e) => Err(format!("store task: {e}")),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An invocation of `tenant` with `key` arrives at `now`.
    pub fn begin(self: &Arc<Self>, tenant: &str, key: &str, now: Instant) -> Begun {
        let mut book = self.lock();
        // Forget what expired.
        let mut expired = Vec::new();
        while let Some((k, at)) = book.done.front() {
            if now.saturating_duration_since(*at) < KEEP && book.done.len() <= MAX_KEYS {
                break;
            }
            let k = k.clone();
            book.done.pop_front();
            if matches!(book.by_key.get(&k), Some((State::Done(_), _))) {
                book.by_key.remove(&k);
                expired.push(store_id(&k));
            }
        }
        let k = (tenant.to_owned(), key.to_owned());
        let begun = match book.by_key.get(&k) {
            Some((State::Running, _)) => Begun::InProgress,
            Some((State::Done(answer), _)) => Begun::Replay(answer.clone()),
            None => {
                book.by_key.insert(k.clone(), (State::Running, now));
                Begun::Run(Running {
                    ids: self.clone(),
                    key: Some(k),
                })
            }
        };
        drop(book);
        if !expired.is_empty() && self.store.is_some() {
            let ids = self.clone();
            tokio::spawn(async move {
                if let Err(e) = ids.write(move |s| s.remove_records(KIND, &expired)).await {
                    tracing::warn!("removing expired invocation ids: {e}");
                }
            });
        }
        begun
    }
}

impl Running {
    /// Writes the key to the store before the invocation runs (nothing to do without one);
    /// an error means it must not run.
    pub async fn persist(&self) -> Result<(), String> {
        let Some(k) = &self.key else {
            return Ok(());
        };
        let (id, stored) = (
            store_id(k),
            Stored {
                at_ms: unix_ms(),
                answer: None,
            },
        );
        self.ids
            .write(move |s| s.put_record(KIND, &id, &stored))
            .await
    }

    /// The invocation was answered `answer` at `now`: remembered (in the store too) if it
    /// may have run, forgotten otherwise.
    pub async fn finish(mut self, answer: Remembered, now: Instant) {
        let Some(k) = self.key.take() else {
            return;
        };
        let id = store_id(&k);
        let ran = may_have_run(answer.status);
        {
            let mut book = self.ids.lock();
            if ran {
                book.by_key
                    .insert(k.clone(), (State::Done(answer.clone()), now));
                book.done.push_back((k, now));
            } else {
                book.by_key.remove(&k);
            }
        }
        let written = if ran {
            let stored = Stored {
                at_ms: unix_ms(),
                answer: Some(answer),
            };
            self.ids
                .write(move |s| s.put_record(KIND, &id, &stored))
                .await
        } else {
            self.ids.write(move |s| s.remove_records(KIND, &[id])).await
        };
        // The record stays as written before the run: after a restart, its retries get
        // 502 `interrupted` rather than a second run.
        if let Err(e) = written {
            tracing::warn!("recording an invocation's answer: {e}");
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

    #[tokio::test]
    async fn t01_a_key_runs_once_and_its_answer_is_replayed_until_it_expires() {
        let ids = Ids::new();
        let t0 = Instant::now();
        let Begun::Run(running) = ids.begin("a", "k1", t0) else {
            panic!("a new key runs");
        };
        assert!(matches!(ids.begin("a", "k1", t0), Begun::InProgress));
        // Another tenant's key of the same name is another invocation.
        assert!(matches!(ids.begin("b", "k1", t0), Begun::Run(_)));
        running.finish(answer(200), t0).await;
        let Begun::Replay(a) = ids.begin("a", "k1", t0 + Duration::from_secs(1)) else {
            panic!("the answer is replayed");
        };
        assert_eq!(a, answer(200));
        assert!(matches!(ids.begin("a", "k1", t0 + KEEP), Begun::Run(_)));
    }

    #[tokio::test]
    async fn t02_an_answer_that_never_ran_is_forgotten_and_may_be_retried() {
        let ids = Ids::new();
        let t0 = Instant::now();
        for status in [429, 503, 400] {
            let Begun::Run(running) = ids.begin("a", "k", t0) else {
                panic!("runs");
            };
            running.finish(answer(status), t0).await;
        }
        // Dropped unfinished: forgotten too.
        let Begun::Run(running) = ids.begin("a", "k", t0) else {
            panic!("runs");
        };
        drop(running);
        let Begun::Run(running) = ids.begin("a", "k", t0) else {
            panic!("runs");
        };
        running.finish(answer(504), t0).await;
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

    #[tokio::test]
    async fn t04_ids_outlive_a_crash_and_one_cut_off_is_never_run_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = || {
            Arc::new(
                SampleStore::open(&dir.path().join("ids.redb"), Default::default()).expect("store"),
            )
        };
        let t0 = Instant::now();
        {
            let ids = Ids::durable(open()).expect("ids");
            let Begun::Run(done) = ids.begin("a", "done", t0) else {
                panic!("runs");
            };
            done.persist().await.expect("persist");
            done.finish(answer(200), t0).await;
            let Begun::Run(refused) = ids.begin("a", "refused", t0) else {
                panic!("runs");
            };
            refused.persist().await.expect("persist");
            refused.finish(answer(503), t0).await;
            let Begun::Run(cut) = ids.begin("a", "cut", t0) else {
                panic!("runs");
            };
            cut.persist().await.expect("persist");
            // The node dies here: `cut` never finishes (dropping it forgets it in memory only,
            // and the memory goes with the process).
            drop(cut);
        }
        let ids = Ids::durable(open()).expect("ids again");
        let now = Instant::now();
        assert!(matches!(ids.begin("a", "done", now), Begun::Replay(a) if a == answer(200)));
        let Begun::Replay(a) = ids.begin("a", "cut", now) else {
            panic!("a key cut off by the crash is not run again");
        };
        assert_eq!(a.status, 502);
        assert!(String::from_utf8_lossy(&a.body).contains("interrupted"));
        assert!(matches!(ids.begin("a", "refused", now), Begun::Run(_)));
        assert!(matches!(ids.begin("b", "done", now), Begun::Run(_)));
    }
}
