//! What a Raft RPC must satisfy before openraft sees it.
//!
//! openraft trusts its peers: an RPC that no correct member sends — entries that do not follow
//! the previous log id, a leader claiming to be the receiver, a log id from a later term than
//! its sender's vote, a rewrite of an entry this node knows committed — trips its internal
//! assertions and stops this node's Raft core until a restart (found by
//! `tests/rpc_fuzz.rs`). Holding the cluster secret does not make a request correct: a bug,
//! a corrupted body or a stale process may send one. These checks refuse such an RPC with a
//! reason (400) instead; everything a correct member sends passes them. They do not make Raft
//! tolerate a member that lies consistently (it is a crash-fault protocol).

use forewarm_raft::{NodeId, TypeConfig};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::{LogId, Vote};

/// What this node knows that the checks need.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Local {
    /// This node's Raft id.
    pub me: NodeId,
    /// Its highest committed log id.
    pub committed: Option<LogId<NodeId>>,
    /// The caller's Raft id as its TLS certificate proves it (`None` without TLS): an RPC
    /// may carry only its own sender's vote.
    pub caller: Option<NodeId>,
}

/// Terms and indexes at or past this are refused: openraft adds one to them unchecked (a
/// term, when it stands for election; an index, when it purges a log), and no cluster gets
/// near it (2^62 elections or entries).
pub(crate) const LIMIT: u64 = 1 << 62;

/// The sender's vote: from another node, with a term below [`LIMIT`].
fn sender(vote: &Vote<NodeId>, local: &Local) -> Result<u64, String> {
    let leader = vote.leader_id();
    if leader.voted_for() == Some(local.me) {
        return Err(String::from(
            "the vote names this node: a member does not send Raft RPCs to itself",
        ));
    }
    if let Some(caller) = local.caller
        && leader.voted_for() != Some(caller)
    {
        return Err(format!(
            "the vote names node {:?}, the caller's certificate another (Raft id {caller})",
            leader.voted_for()
        ));
    }
    if leader.get_term() >= LIMIT {
        return Err(format!("term {} is past 2^62", leader.get_term()));
    }
    Ok(leader.get_term())
}

/// A log id the sender holds: below [`LIMIT`], not from a term after its own vote's.
fn within_term(what: &str, id: &LogId<NodeId>, term: u64) -> Result<(), String> {
    if id.index >= LIMIT {
        return Err(format!("{what} {id} has an index past 2^62"));
    }
    if id.leader_id.term > term {
        return Err(format!(
            "{what} {id} is from a term after the sender's ({term})"
        ));
    }
    Ok(())
}

/// A log id agrees with this node's committed entry: at its index it is that entry, below it
/// from no later a term, after it from no earlier one (a correct leader holds every committed
/// entry, and terms never fall along a log).
fn agrees_with_committed(what: &str, id: &LogId<NodeId>, local: &Local) -> Result<(), String> {
    match &local.committed {
        // Below the committed entry: no later a term; at its index: that entry itself; after
        // it: no earlier a term (terms never fall along a log).
        Some(c)
            if (id.index < c.index && id.leader_id > c.leader_id)
                || (id.index == c.index && id != c)
                || (id.index > c.index && id.leader_id < c.leader_id) =>
        {
            Err(format!(
                "{what} {id} rewrites an entry this node knows committed (up to {c})"
            ))
        }
        _ => Ok(()),
    }
}

/// A vote request: its last log id is not from a later term than the vote.
pub(crate) fn vote(req: &VoteRequest<NodeId>, local: &Local) -> Result<(), String> {
    let term = sender(&req.vote, local)?;
    match &req.last_log_id {
        Some(last) => within_term("last_log_id", last, term),
        None => Ok(()),
    }
}

/// Entries to append: from a leader whose vote is committed, following `prev_log_id` one index
/// at a time, in non-decreasing terms no later than the leader's.
pub(crate) fn append(req: &AppendEntriesRequest<TypeConfig>, local: &Local) -> Result<(), String> {
    let term = sender(&req.vote, local)?;
    if !req.vote.is_committed() {
        return Err(String::from(
            "entries come from a leader, whose vote is committed",
        ));
    }
    let mut last = req.prev_log_id;
    if let Some(prev) = &last {
        within_term("prev_log_id", prev, term)?;
        agrees_with_committed("prev_log_id", prev, local)?;
    }
    for entry in &req.entries {
        let id = &entry.log_id;
        let expected = match &last {
            Some(l) => l.index.checked_add(1).ok_or("an index past u64::MAX")?,
            None => 0,
        };
        if id.index != expected {
            return Err(format!(
                "entry {id} does not follow {} (index {expected} expected)",
                last.map_or_else(|| String::from("an empty log"), |l| l.to_string())
            ));
        }
        within_term("entry", id, term)?;
        if let Some(l) = &last
            && id.leader_id < l.leader_id
        {
            return Err(format!("entry {id} is from an earlier term than {l}"));
        }
        agrees_with_committed("entry", id, local)?;
        last = Some(*id);
    }
    if let Some(commit) = &req.leader_commit {
        within_term("leader_commit", commit, term)?;
        // Terms never fall along a log: the leader's committed entry is from no later a term
        // than an entry after it, and from no earlier a term than one before it.
        if let Some(l) = &last {
            let out_of_order = (commit.index <= l.index && commit.leader_id > l.leader_id)
                || (commit.index > l.index && commit.leader_id < l.leader_id);
            if out_of_order {
                return Err(format!(
                    "leader_commit {commit} cannot be in one log with {l} (terms never fall \
                     along a log)"
                ));
            }
        }
    }
    Ok(())
}

/// The chunks of the snapshot being received: (its id, its bytes so far).
#[derive(Debug, Default)]
pub(crate) struct Receiving(Option<(String, Vec<u8>)>);

impl Receiving {
    /// Take in one chunk; at the last, check the whole snapshot (installing one this node
    /// cannot read would stop its Raft core). Chunks out of order cannot be checked and are
    /// refused at the last.
    pub(crate) fn chunk(&mut self, req: &InstallSnapshotRequest<TypeConfig>) -> Result<(), String> {
        let id = &req.meta.snapshot_id;
        if req.offset == 0 {
            self.0 = Some((id.clone(), Vec::new()));
        }
        let whole = match &mut self.0 {
            Some((held, bytes)) if held == id && bytes.len() as u64 == req.offset => {
                bytes.extend_from_slice(&req.data);
                true
            }
            _ => false,
        };
        if !req.done {
            return Ok(());
        }
        let taken = self.0.take();
        match taken {
            Some((_, bytes)) if whole => forewarm_raft::check_snapshot(&bytes)
                .map_err(|e| format!("snapshot {id} is not a snapshot of this state: {e}")),
            _ => Err(format!(
                "the last chunk of snapshot {id} at offset {} does not follow the chunks received",
                req.offset
            )),
        }
    }
}

/// A snapshot: from a leader whose vote is committed, of a log no later than its term.
pub(crate) fn snapshot(
    req: &InstallSnapshotRequest<TypeConfig>,
    local: &Local,
) -> Result<(), String> {
    let term = sender(&req.vote, local)?;
    if !req.vote.is_committed() {
        return Err(String::from(
            "snapshots come from a leader, whose vote is committed",
        ));
    }
    match &req.meta.last_log_id {
        Some(last) => {
            within_term("snapshot last_log_id", last, term)?;
            agrees_with_committed("snapshot last_log_id", last, local)
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use openraft::{SnapshotMeta, StoredMembership};

    use super::*;

    fn chunk(id: &str, offset: u64, data: &[u8], done: bool) -> InstallSnapshotRequest<TypeConfig> {
        InstallSnapshotRequest {
            vote: Vote::new_committed(2, 7),
            meta: SnapshotMeta {
                last_log_id: None,
                last_membership: StoredMembership::default(),
                snapshot_id: id.to_owned(),
            },
            offset,
            data: data.to_vec(),
            done,
        }
    }

    #[test]
    fn a_snapshot_is_checked_whole_at_its_last_chunk() {
        let body = br#"{"state":{"tenants":{},"codes":{},"models":{}}}"#;
        let (head, tail) = body.split_at(10);
        let mut r = Receiving::default();
        assert_eq!(r.chunk(&chunk("a", 0, head, false)), Ok(()));
        assert_eq!(r.chunk(&chunk("a", 10, tail, true)), Ok(()));
        // In one chunk, and not a snapshot of this state.
        assert_eq!(r.chunk(&chunk("b", 0, body, true)), Ok(()));
        let junk = r.chunk(&chunk("c", 0, b"{\"state\":7}", true));
        assert!(junk.is_err_and(|e| e.contains("not a snapshot of this state")));
        // A last chunk that does not follow what arrived (a gap, another snapshot).
        assert_eq!(r.chunk(&chunk("d", 0, head, false)), Ok(()));
        let gap = r.chunk(&chunk("d", 11, tail, true));
        assert!(gap.is_err_and(|e| e.contains("does not follow")));
        assert_eq!(r.chunk(&chunk("e", 0, head, false)), Ok(()));
        assert!(r.chunk(&chunk("f", 10, tail, true)).is_err());
    }

    #[test]
    fn entries_must_follow_and_stay_within_the_leaders_term() {
        let local = Local {
            me: 1,
            committed: Some(LogId::new(openraft::CommittedLeaderId::new(1, 7), 3)),
            caller: None,
        };
        let id = |term, index| LogId::new(openraft::CommittedLeaderId::new(term, 7), index);
        let append =
            |prev: Option<LogId<NodeId>>, ids: Vec<LogId<NodeId>>, vote| AppendEntriesRequest::<
                TypeConfig,
            > {
                vote,
                prev_log_id: prev,
                entries: ids
                    .into_iter()
                    .map(|log_id| openraft::Entry {
                        log_id,
                        payload: openraft::EntryPayload::Blank,
                    })
                    .collect(),
                leader_commit: None,
            };
        let leader = Vote::new_committed(2, 7);
        let ok = append(Some(id(1, 3)), vec![id(2, 4), id(2, 5)], leader);
        assert_eq!(super::append(&ok, &local), Ok(()));
        // The leader's commit may be behind the entries sent, or ahead of them (a follower
        // catching up), in the same or a later term.
        for commit in [id(1, 3), id(2, 4), id(2, 9)] {
            let with_commit = AppendEntriesRequest {
                leader_commit: Some(commit),
                ..append(Some(id(1, 3)), vec![id(2, 4), id(2, 5)], leader)
            };
            assert_eq!(super::append(&with_commit, &local), Ok(()), "{commit}");
        }
        // Over TLS the vote must be the certified caller's own.
        let from_7 = Local {
            caller: Some(7),
            ..local
        };
        assert_eq!(super::append(&ok, &from_7), Ok(()));
        let from_8 = Local {
            caller: Some(8),
            ..local
        };
        let spoofed = super::append(&ok, &from_8);
        assert!(spoofed.is_err_and(|e| e.contains("certificate")));
        for (bad, says) in [
            (
                append(Some(id(1, 3)), vec![id(2, 5)], leader),
                "does not follow",
            ),
            (append(Some(id(1, 3)), vec![id(3, 4)], leader), "term after"),
            (
                append(Some(id(2, 4)), vec![id(1, 5)], leader),
                "earlier term",
            ),
            (append(Some(id(2, 2)), vec![], leader), "rewrites an entry"),
            // The committed entry (1, 3) replaced by one of an earlier term, or followed by one.
            (append(Some(id(0, 3)), vec![], leader), "rewrites an entry"),
            (append(Some(id(0, 4)), vec![], leader), "rewrites an entry"),
            (append(None, vec![id(0, 0)], Vote::new(2, 7)), "committed"),
            (append(None, vec![], Vote::new_committed(2, 1)), "to itself"),
            (append(Some(id(2, LIMIT)), vec![], leader), "past 2^62"),
            (
                // A fuzzed request that drove openraft's follower into an invalid state
                // (committed (3, 0) past its last log id (1, 1)).
                AppendEntriesRequest {
                    leader_commit: Some(id(2, 4)),
                    ..append(Some(id(1, 3)), vec![id(1, 4), id(1, 5)], leader)
                },
                "terms never fall",
            ),
            (
                AppendEntriesRequest {
                    leader_commit: Some(id(1, 6)),
                    ..append(Some(id(1, 3)), vec![id(2, 4), id(2, 5)], leader)
                },
                "terms never fall",
            ),
        ] {
            let e = super::append(&bad, &local).expect_err(says);
            assert!(e.contains(says), "{says}: {e}");
        }
    }
}
