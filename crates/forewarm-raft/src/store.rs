//! The Raft log and state machine, durable in one redb file.
//!
//! - Log entries, the vote and the purge/commit marks are written with `Durability::Immediate`:
//!   redb fsyncs before the commit returns, and only then does `append` report the entries
//!   flushed (and `save_vote` return), as Raft requires.
//! - The state machine is stored row by row (`t/<tenant>`, `c/<tenant>/<code>`,
//!   `m/<tenant>/<code>/<region>`) next to its last applied log id, in the same transaction.
//!   Those commits use `Durability::None`: they become durable with the next log commit, and
//!   a crash in between only loses applies that Raft re-applies from the durable log up to the
//!   durable commit mark (`read_committed`) at start. The commit mark itself is advisory and
//!   also written with `None` (a lost mark means fewer entries re-applied at start; the leader
//!   tells the rest). Snapshots and their installation are written with `Immediate`.
//!
//! redb calls block, so every one runs on tokio's blocking pool.

use std::fmt::Debug;
use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, RwLock};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftLogReader, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership, Vote,
};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::state::{Applied, ClusterState, Code, Command, ModelSummary, Tenant};
use crate::{ClusterNode, NodeId, TypeConfig};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
/// `vote`, `committed`, `purged`.
const LOG_META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_log_meta");
/// State-machine rows, plus `applied` and `membership` under `!`-prefixed keys.
const SM: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_sm");
/// The current snapshot: `meta` and `data`.
const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_snapshot");

const APPLIED: &str = "!applied";
const MEMBERSHIP: &str = "!membership";

type Result<T> = std::result::Result<T, StorageError<NodeId>>;
type Membership = StoredMembership<NodeId, ClusterNode>;

/// Open (or create) the Raft store at `path`: the log store and the state machine over one
/// database, and the state machine's applied state for the node to read.
pub fn open(path: &Path) -> std::result::Result<(LogStore, StateMachine), OpenError> {
    open_into(path, SharedState::default())
}

/// Open the Raft store at `path` again (after the Raft core that had it stopped), loading
/// its applied state into `shared`, the one the node already reads: its readers see what was
/// durably applied, and whatever Raft applies from then on.
pub fn reopen(
    path: &Path,
    shared: &SharedState,
) -> std::result::Result<(LogStore, StateMachine), OpenError> {
    open_into(path, shared.clone())
}

fn open_into(
    path: &Path,
    shared: SharedState,
) -> std::result::Result<(LogStore, StateMachine), OpenError> {
    let db = Database::create(path).map_err(|e| OpenError {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let db = Arc::new(db);
    let fail = |message: String| OpenError {
        path: path.display().to_string(),
        message,
    };
    let tx = db.begin_write().map_err(|e| fail(e.to_string()))?;
    for table in [LOG_META, SM, SNAPSHOT] {
        tx.open_table(table).map_err(|e| fail(e.to_string()))?;
    }
    tx.open_table(LOG).map_err(|e| fail(e.to_string()))?;
    tx.commit().map_err(|e| fail(e.to_string()))?;
    let loaded = load_state(&db).map_err(fail)?;
    *shared.write().unwrap_or_else(|e| e.into_inner()) = loaded;
    let log = LogStore { db: db.clone() };
    let sm = StateMachine { db, shared };
    Ok((log, sm))
}

/// The store could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("raft store {path}: {message}")]
pub struct OpenError {
    path: String,
    message: String,
}

/// The applied state, as every node reads it (the request path reads only this).
#[derive(Debug, Clone, Default)]
pub struct AppliedState {
    /// Tenants, codes, models.
    pub state: ClusterState,
    /// Last applied log id.
    pub last_applied: Option<LogId<NodeId>>,
    /// Membership as of the last applied entry.
    pub membership: Membership,
}

/// Shared, readable applied state.
pub type SharedState = Arc<RwLock<AppliedState>>;

fn load_state(db: &Database) -> std::result::Result<AppliedState, String> {
    let tx = db.begin_read().map_err(|e| e.to_string())?;
    let table = tx.open_table(SM).map_err(|e| e.to_string())?;
    let mut applied = AppliedState::default();
    for item in table.iter().map_err(|e| e.to_string())? {
        let (k, v) = item.map_err(|e| e.to_string())?;
        let (key, bytes) = (k.value(), v.value());
        let bad = |e: serde_json::Error| format!("row {key}: {e}");
        match key {
            APPLIED => applied.last_applied = serde_json::from_slice(bytes).map_err(bad)?,
            MEMBERSHIP => applied.membership = serde_json::from_slice(bytes).map_err(bad)?,
            _ => {
                apply_row(&mut applied.state, key, bytes).map_err(|e| format!("row {key}: {e}"))?
            }
        }
    }
    applied.state.reindex();
    Ok(applied)
}

fn apply_row(state: &mut ClusterState, key: &str, bytes: &[u8]) -> std::result::Result<(), String> {
    let (kind, rest) = key.split_once('/').ok_or("no kind")?;
    match kind {
        "t" => {
            let t: crate::Tenant = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
            state.tenants.insert(t.id.clone(), t);
        }
        "c" => {
            let c: crate::Code = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
            state.codes.insert(c.key(), Arc::new(c));
        }
        "m" => {
            let m: crate::ModelSummary =
                serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
            state
                .models
                .entry(m.code.clone())
                .or_default()
                .insert(m.region.clone(), m);
        }
        "i" if key == IMAGES_ROW => {
            state.images = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        }
        other => return Err(format!("unknown row kind {other:?} ({rest})")),
    }
    Ok(())
}

/// A state-machine row: key and JSON value; an empty value (never JSON) removes the row.
type Row = (String, Vec<u8>);

fn tenant_row(t: &Tenant) -> std::result::Result<Row, String> {
    Ok((format!("t/{}", t.id), to_json(t)?))
}

fn code_row(c: &Code) -> std::result::Result<Row, String> {
    Ok((format!("c/{}", c.key()), to_json(c)?))
}

fn model_row(m: &ModelSummary) -> std::result::Result<Row, String> {
    Ok((format!("m/{}/{}", m.code, m.region), to_json(m)?))
}

/// The cluster's image allow-list: one row.
fn images_row(state: &ClusterState) -> std::result::Result<Row, String> {
    Ok((String::from(IMAGES_ROW), to_json(&state.images)?))
}

const IMAGES_ROW: &str = "i/allowed";

/// The rows `command` removes from `state` (asked before it is applied), as removals.
fn rows_removed_by(state: &ClusterState, command: &Command) -> Vec<Row> {
    let Command::DeleteTenant { id } = command else {
        return Vec::new();
    };
    if !state.tenants.contains_key(id) {
        return Vec::new();
    }
    let owned = |key: &str| key.split_once('/').is_some_and(|(t, _)| t == id);
    let tenant = std::iter::once(format!("t/{id}"));
    let codes = state
        .codes
        .keys()
        .filter(|k| owned(k))
        .map(|k| format!("c/{k}"));
    let models = state
        .models
        .iter()
        .filter(|(k, _)| owned(k))
        .flat_map(|(k, per_region)| per_region.keys().map(move |r| format!("m/{k}/{r}")));
    tenant
        .chain(codes)
        .chain(models)
        .map(|key| (key, Vec::new()))
        .collect()
}

/// The rows of `state` that `command` may have changed.
fn rows_of(state: &ClusterState, command: &Command) -> std::result::Result<Vec<Row>, String> {
    match command {
        Command::CreateTenant(t) => state
            .tenants
            .get(&t.id)
            .map(tenant_row)
            .into_iter()
            .collect(),
        Command::UpdateTenant(u) => state
            .tenants
            .get(&u.id)
            .map(tenant_row)
            .into_iter()
            .collect(),
        // Its removals were taken before it was applied (`rows_removed_by`).
        Command::DeleteTenant { .. } => Ok(Vec::new()),
        Command::PutCode(c) => state
            .codes
            .get(c.key().as_ref())
            .map(|c| code_row(c))
            .into_iter()
            .collect(),
        Command::PutModels { models: batch } => batch
            .iter()
            .filter_map(|m| state.models.get(&m.code)?.get(&m.region))
            .map(model_row)
            .collect(),
        Command::SetImages { .. } => Ok(vec![images_row(state)?]),
    }
}

/// Every row of `state`.
fn all_rows(state: &ClusterState) -> std::result::Result<Vec<Row>, String> {
    let tenants = state.tenants.values().map(tenant_row);
    let codes = state.codes.values().map(|c| code_row(c));
    let models = state
        .models
        .values()
        .flat_map(|r| r.values())
        .map(model_row);
    let images = std::iter::once(images_row(state));
    tenants.chain(codes).chain(models).chain(images).collect()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::result::Result<T, String> + Send + 'static,
) -> std::result::Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("store task: {e}"))?
}

fn io_error(message: String) -> std::io::Error {
    std::io::Error::other(message)
}

fn to_json<T: Serialize>(value: &T) -> std::result::Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| e.to_string())
}

fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// The Raft log (and vote) of this node.
#[derive(Debug, Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

impl LogStore {
    /// How many handles (log stores, readers, state machines) share the database; it is
    /// closed when the last one goes.
    pub fn handles(&self) -> usize {
        Arc::strong_count(&self.db)
    }

    async fn meta<T: DeserializeOwned + Send + 'static>(
        &self,
        key: &'static str,
    ) -> std::result::Result<Option<T>, String> {
        let db = self.db.clone();
        blocking(move || {
            let tx = db.begin_read().map_err(|e| e.to_string())?;
            let table = tx.open_table(LOG_META).map_err(|e| e.to_string())?;
            match table.get(key).map_err(|e| e.to_string())? {
                Some(v) => from_json(v.value()).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    async fn put_meta<T: Serialize>(
        &self,
        key: &'static str,
        value: &T,
        durability: Durability,
    ) -> std::result::Result<(), String> {
        let db = self.db.clone();
        let bytes = to_json(value)?;
        blocking(move || {
            let mut tx = db.begin_write().map_err(|e| e.to_string())?;
            tx.set_durability(durability).map_err(|e| e.to_string())?;
            tx.open_table(LOG_META)
                .map_err(|e| e.to_string())?
                .insert(key, bytes.as_slice())
                .map_err(|e| e.to_string())?;
            tx.commit().map_err(|e| e.to_string())
        })
        .await
    }

    /// Delete the log entries in `range` (and write `purged` first, when given), durably.
    async fn delete(
        &self,
        range: (Bound<u64>, Bound<u64>),
        purged: Option<LogId<NodeId>>,
    ) -> std::result::Result<(), String> {
        let db = self.db.clone();
        let purged = purged.map(|p| to_json(&p)).transpose()?;
        blocking(move || {
            let tx = db.begin_write().map_err(|e| e.to_string())?;
            if let Some(p) = purged {
                tx.open_table(LOG_META)
                    .map_err(|e| e.to_string())?
                    .insert("purged", p.as_slice())
                    .map_err(|e| e.to_string())?;
            }
            tx.open_table(LOG)
                .map_err(|e| e.to_string())?
                .retain_in(range, |_, _| false)
                .map_err(|e| e.to_string())?;
            tx.commit().map_err(|e| e.to_string())
        })
        .await
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>> {
        let db = self.db.clone();
        let range = (range.start_bound().cloned(), range.end_bound().cloned());
        blocking(move || {
            let tx = db.begin_read().map_err(|e| e.to_string())?;
            let table = tx.open_table(LOG).map_err(|e| e.to_string())?;
            let mut out = Vec::new();
            for item in table.range(range).map_err(|e| e.to_string())? {
                let (_, v) = item.map_err(|e| e.to_string())?;
                out.push(from_json(v.value())?);
            }
            Ok(out)
        })
        .await
        .map_err(|e| StorageIOError::read_logs(&io_error(e)).into())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>> {
        let purged: Option<LogId<NodeId>> = self
            .meta("purged")
            .await
            .map_err(|e| StorageIOError::read_logs(&io_error(e)))?;
        let db = self.db.clone();
        let last: Option<LogId<NodeId>> = blocking(move || {
            let tx = db.begin_read().map_err(|e| e.to_string())?;
            let table = tx.open_table(LOG).map_err(|e| e.to_string())?;
            match table.last().map_err(|e| e.to_string())? {
                Some((_, v)) => {
                    let entry: Entry<TypeConfig> = from_json(v.value())?;
                    Ok(Some(entry.log_id))
                }
                None => Ok(None),
            }
        })
        .await
        .map_err(|e| StorageIOError::read_logs(&io_error(e)))?;
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last.or(purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<()> {
        self.put_meta("vote", vote, Durability::Immediate)
            .await
            .map_err(|e| StorageIOError::write_vote(&io_error(e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>> {
        self.meta("vote")
            .await
            .map_err(|e| StorageIOError::read_vote(&io_error(e)).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<()> {
        // Advisory (what to re-apply at start): durable with the next log commit.
        self.put_meta("committed", &committed, Durability::None)
            .await
            .map_err(|e| StorageIOError::write(&io_error(e)).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>> {
        Ok(self
            .meta::<Option<LogId<NodeId>>>("committed")
            .await
            .map_err(|e| StorageIOError::read(&io_error(e)))?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let rows = entries
            .into_iter()
            .map(|e| to_json(&e).map(|b| (e.log_id.index, b)))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| StorageIOError::write_logs(&io_error(e)))?;
        let db = self.db.clone();
        let written = blocking(move || {
            let tx = db.begin_write().map_err(|e| e.to_string())?;
            {
                let mut table = tx.open_table(LOG).map_err(|e| e.to_string())?;
                for (index, bytes) in &rows {
                    table
                        .insert(*index, bytes.as_slice())
                        .map_err(|e| e.to_string())?;
                }
            }
            // Immediate durability: fsynced when commit returns.
            tx.commit().map_err(|e| e.to_string())
        })
        .await;
        match written {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => Err(StorageIOError::write_logs(&io_error(e)).into()),
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        self.delete((Bound::Included(log_id.index), Bound::Unbounded), None)
            .await
            .map_err(|e| StorageIOError::write_logs(&io_error(e)).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        self.delete(
            (Bound::Unbounded, Bound::Included(log_id.index)),
            Some(log_id),
        )
        .await
        .map_err(|e| StorageIOError::write_logs(&io_error(e)).into())
    }
}

/// The replicated state machine of this node.
#[derive(Debug, Clone)]
pub struct StateMachine {
    db: Arc<Database>,
    shared: SharedState,
}

impl StateMachine {
    /// The applied state, shared with the node.
    pub fn shared(&self) -> SharedState {
        self.shared.clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, AppliedState> {
        self.shared.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, AppliedState> {
        self.shared.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Store the current snapshot (its meta and data) in `tx`.
fn put_snapshot(
    tx: &redb::WriteTransaction,
    meta: &[u8],
    data: &[u8],
) -> std::result::Result<(), String> {
    let mut t = tx.open_table(SNAPSHOT).map_err(|e| e.to_string())?;
    t.insert("meta", meta).map_err(|e| e.to_string())?;
    t.insert("data", data).map_err(|e| e.to_string())?;
    Ok(())
}

/// Whether `data` is a snapshot this state machine can install: installing one that is not
/// is a storage error, which stops the Raft core, so a receiver checks first.
pub fn check_snapshot(data: &[u8]) -> std::result::Result<(), String> {
    from_json::<SnapshotBody>(data).map(drop)
}

/// What a snapshot holds besides its meta.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SnapshotBody {
    state: ClusterState,
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>> {
        let (meta, data) = {
            let applied = self.read();
            let body = SnapshotBody {
                state: applied.state.clone(),
            };
            let data =
                serde_json::to_vec(&body).map_err(|e| StorageIOError::read_state_machine(&e))?;
            let id = match applied.last_applied {
                Some(l) => format!("{}-{}-{}", l.leader_id.term, l.leader_id.node_id, l.index),
                None => String::from("empty"),
            };
            let meta = SnapshotMeta {
                last_log_id: applied.last_applied,
                last_membership: applied.membership.clone(),
                snapshot_id: format!("{id}-{}", data.len()),
            };
            (meta, data)
        };
        let db = self.db.clone();
        let (meta_bytes, stored) = (
            to_json(&meta).map_err(|e| StorageIOError::write_snapshot(None, &io_error(e)))?,
            data.clone(),
        );
        blocking(move || {
            let tx = db.begin_write().map_err(|e| e.to_string())?;
            put_snapshot(&tx, &meta_bytes, &stored)?;
            tx.commit().map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &io_error(e)))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId<NodeId>>, Membership)> {
        let applied = self.read();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let fail = |e: String| StorageIOError::write_state_machine(&io_error(e));
        let mut replies = Vec::new();
        let mut rows: Vec<Row> = Vec::new();
        let (last, membership) = {
            let mut applied = self.write();
            for entry in entries {
                applied.last_applied = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => replies.push(Applied::Done),
                    EntryPayload::Normal(command) => {
                        rows.extend(rows_removed_by(&applied.state, &command));
                        let reply = applied.state.apply(command.clone());
                        rows.extend(rows_of(&applied.state, &command).map_err(fail)?);
                        replies.push(reply);
                    }
                    EntryPayload::Membership(m) => {
                        applied.membership = StoredMembership::new(Some(entry.log_id), m);
                        replies.push(Applied::Done);
                    }
                }
            }
            (to_json(&applied.last_applied), to_json(&applied.membership))
        };
        let (last, membership) = (last.map_err(fail)?, membership.map_err(fail)?);
        let db = self.db.clone();
        blocking(move || {
            let mut tx = db.begin_write().map_err(|e| e.to_string())?;
            // Durable with the next log commit; see the module docs.
            tx.set_durability(Durability::None)
                .map_err(|e| e.to_string())?;
            {
                let mut t = tx.open_table(SM).map_err(|e| e.to_string())?;
                for (key, bytes) in &rows {
                    if bytes.is_empty() {
                        t.remove(key.as_str()).map_err(|e| e.to_string())?;
                    } else {
                        t.insert(key.as_str(), bytes.as_slice())
                            .map_err(|e| e.to_string())?;
                    }
                }
                t.insert(APPLIED, last.as_slice())
                    .map_err(|e| e.to_string())?;
                t.insert(MEMBERSHIP, membership.as_slice())
                    .map_err(|e| e.to_string())?;
            }
            tx.commit().map_err(|e| e.to_string())
        })
        .await
        .map_err(fail)?;
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, ClusterNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<()> {
        let data = snapshot.into_inner();
        let bad = |e: String| StorageIOError::read_snapshot(Some(meta.signature()), &io_error(e));
        let body: SnapshotBody = from_json(&data).map_err(bad)?;
        let mut state = body.state;
        state.reindex();
        // Every row of the new state, replacing all old ones, durably, with the snapshot.
        let mut rows = all_rows(&state).map_err(bad)?;
        rows.push((APPLIED.into(), to_json(&meta.last_log_id).map_err(bad)?));
        rows.push((
            MEMBERSHIP.into(),
            to_json(&meta.last_membership).map_err(bad)?,
        ));
        let meta_bytes = to_json(meta).map_err(bad)?;
        let db = self.db.clone();
        let stored = data.clone();
        blocking(move || {
            let tx = db.begin_write().map_err(|e| e.to_string())?;
            {
                let mut t = tx.open_table(SM).map_err(|e| e.to_string())?;
                t.retain(|_, _| false).map_err(|e| e.to_string())?;
                for (key, bytes) in &rows {
                    t.insert(key.as_str(), bytes.as_slice())
                        .map_err(|e| e.to_string())?;
                }
            }
            put_snapshot(&tx, &meta_bytes, &stored)?;
            tx.commit().map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &io_error(e)))?;
        let mut applied = self.write();
        applied.state = state;
        applied.last_applied = meta.last_log_id;
        applied.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>> {
        let db = self.db.clone();
        let found = blocking(move || {
            let tx = db.begin_read().map_err(|e| e.to_string())?;
            let t = tx.open_table(SNAPSHOT).map_err(|e| e.to_string())?;
            let meta = t.get("meta").map_err(|e| e.to_string())?;
            let data = t.get("data").map_err(|e| e.to_string())?;
            match (meta, data) {
                (Some(m), Some(d)) => {
                    let meta: SnapshotMeta<NodeId, ClusterNode> = from_json(m.value())?;
                    Ok(Some((meta, d.value().to_vec())))
                }
                _ => Ok(None),
            }
        })
        .await
        .map_err(|e| StorageIOError::read_snapshot(None, &io_error(e)))?;
        Ok(found.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::testing::{StoreBuilder, Suite};
    use tempfile::TempDir;

    struct Builder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
        async fn build(&self) -> Result<(TempDir, LogStore, StateMachine)> {
            let dir = TempDir::new().map_err(|e| StorageIOError::write(&e))?;
            let (log, sm) = open(&dir.path().join("raft.redb"))
                .map_err(|e| StorageIOError::write(&io_error(e.to_string())))?;
            Ok((dir, log, sm))
        }
    }

    /// openraft's own storage test suite, against this store.
    #[test]
    fn t01_openraft_storage_suite() {
        if let Err(e) = Suite::test_all(Builder) {
            panic!("openraft storage suite: {e}");
        }
    }

    /// A deleted tenant, its code types and its models are gone from the file too: a node
    /// that restarts does not bring them back.
    #[tokio::test]
    async fn t02_a_deleted_tenant_stays_deleted_after_a_restart() {
        use crate::{Command, ModelSummary, Tenant};
        use openraft::{CommittedLeaderId, EntryPayload};
        let dir = TempDir::new().expect("tempdir");
        let path = dir.path().join("raft.redb");
        let entry = |index: u64, command: Command| Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(command),
        };
        let tenant = |id: &str| Tenant {
            id: id.into(),
            token_sha256: crate::hash_token(id),
            max_warm: 1,
            max_memory_mib: 64,
            allowed_regions: vec![],
            max_extra_latency_ms: None,
        };
        let code = serde_json::from_value::<crate::Code>(serde_json::json!({
            "tenant": "acme", "name": "f", "workload": {}, "image": "i",
            "max_memory_mib": 64, "max_cpu_millis": 100, "version": 0
        }))
        .expect("a code type");
        let model = ModelSummary {
            code: "acme/f".into(),
            region: "r".into(),
            samples: 1,
            need_mib: 8.0,
            cpu_p95_ms: 1.0,
            duration_p95_ms: 1.0,
            cold_start_ms: 100.0,
            demand_per_min: vec![],
            containers_per_min: vec![],
            trained_at_ms: 0,
        };
        {
            let (_log, mut sm) = open(&path).expect("open");
            sm.apply([
                entry(1, Command::CreateTenant(tenant("acme"))),
                entry(2, Command::CreateTenant(tenant("other"))),
                entry(3, Command::PutCode(code)),
                entry(
                    4,
                    Command::PutModels {
                        models: vec![model],
                    },
                ),
            ])
            .await
            .expect("applied");
            let state = sm.read().state.clone();
            assert_eq!((state.codes.len(), state.models.len()), (1, 1));
            sm.apply([entry(5, Command::DeleteTenant { id: "acme".into() })])
                .await
                .expect("applied");
        }
        let (_log, sm) = open(&path).expect("reopen");
        let state = sm.read().state.clone();
        let tenants: Vec<&String> = state.tenants.keys().collect();
        assert_eq!(tenants, ["other"]);
        assert!(
            state.codes.is_empty() && state.models.is_empty(),
            "{state:?}"
        );
    }

    /// The cluster's image allow-list is kept in the file and replaced whole.
    #[tokio::test]
    async fn t03_the_image_allow_list_survives_a_restart() {
        use crate::Command;
        use openraft::{CommittedLeaderId, EntryPayload};
        let dir = TempDir::new().expect("tempdir");
        let path = dir.path().join("raft.redb");
        let set = |index: u64, images: &[&str]| Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Command::SetImages {
                images: images.iter().map(|i| String::from(*i)).collect(),
            }),
        };
        {
            let (_log, mut sm) = open(&path).expect("open");
            sm.apply([set(1, &["a:1", "b:2"]), set(2, &["b:2", "c:3"])])
                .await
                .expect("applied");
        }
        let (_log, sm) = open(&path).expect("reopen");
        let images: Vec<String> = sm.read().state.images.iter().cloned().collect();
        assert_eq!(images, ["b:2", "c:3"]);
    }
}
