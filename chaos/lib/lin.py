"""Linearizability checker (Wing & Gong's search with Lowe's memoisation) for the replicated
state's histories the chaos scenarios record.

A history is a list of operations, each with the client-side times it was sent and answered:

    {"key": "tenant/t-3", "f": "create", "value": null, "ok": "created", "start": 1.20, "end": 1.31}

`ok` is what the answer proves, or None when the answer proves nothing (a timeout, a 503 from a
write that may have committed): such an operation may have taken effect at any time after its
start, or never. A read without an answer has no effect and is left out of the history.

Keys are independent objects (P-compositionality, Herlihy & Wing): each key's operations are
checked on their own. Two models:

- `tenant/<id>`, a set membership: `create` answers "created" (it was absent) or "exists";
  `get` answers "present" or "absent".
- `code/<name>`, a versioned register: `put` of a value answers the version it stored (the
  stored version plus one); `get` answers [value, version] or None (never written).

    python3 chaos/lib/lin.py --self-test     # the checker on histories with known verdicts
"""

import sys


def step(key, state, op):
    """The state after `op` from `state`, or None when `op`'s answer is impossible there.
    `op["ok"] is None` (unknown answer) accepts any answer."""
    f, ok = op["f"], op["ok"]
    if key.startswith("tenant/"):
        present = bool(state)
        if f == "create":
            if ok is None:
                return True
            if ok == "created":
                return None if present else True
            return state if (ok == "exists") == present else None
        if f == "get":
            return state if (ok == "present") == present else None
    if key.startswith("code/"):
        version = state[1] if state else 0
        if f == "put":
            if ok is None or ok == version + 1:
                return (op["value"], version + 1)
            return None
        if f == "get":
            want = tuple(ok) if ok is not None else None
            return state if want == state else None
    raise ValueError(f"no model for {f} on {key}")


def initial(key):
    return False if key.startswith("tenant/") else None


INF = float("inf")
UNREAD = "<a value no read returned>"


def _unread_as_one(key, ops):
    """`ops` with every written value that no read returned replaced by one placeholder. Values
    are unique per write, so a read can tell only the values it returns apart from the rest;
    after the replacement, unanswered writes of unread values have one effect (the next
    version) and the search can treat them as one kind."""
    if not key.startswith("code/"):
        return list(ops)
    read = {o["ok"][0] for o in ops if o["f"] == "get" and o["ok"] is not None}
    return [o if o["f"] != "put" or o["value"] in read else {**o, "value": UNREAD} for o in ops]


def check_key(key, ops, limit=2_000_000):
    """(True, None) when `ops` of one key are linearizable; (False, why) when not; (None, why)
    when the search gave up after `limit` steps."""
    ops = sorted(_unread_as_one(key, ops), key=lambda o: o["start"])
    ends = [INF if o["ok"] is None else o["end"] for o in ops]
    must = sum(1 << i for i, o in enumerate(ops) if o["ok"] is not None)
    # Unanswered writes of the same effect are interchangeable: each may go at any time after
    # its start, and once one may go it may go for the rest of the search (the earliest end
    # still to place only grows). So which of them goes next does not matter; the search
    # takes them in the order they started (op i only once `before[i]` is placed), which cuts
    # the 2^n subsets of n such writes to n + 1 prefixes.
    before = [0] * len(ops)
    last = {}
    for i, o in enumerate(ops):
        if o["ok"] is None:
            effect = (o["f"], o["value"])
            before[i] = last.get(effect, 0)
            last[effect] = 1 << i
    seen = set()
    steps = 0
    # Depth-first over (linearized set, state): an operation may go next when no other
    # operation still to place ended before it started.
    stack = [(0, initial(key))]
    deepest = 0
    while stack:
        done, state = stack.pop()
        if done & must == must:
            return True, None
        if (done, state) in seen:
            continue
        seen.add((done, state))
        steps += 1
        if steps > limit:
            return None, f"{key}: gave up after {limit} states"
        deepest = max(deepest, bin(done & must).count("1"))
        first_end = min((ends[i] for i in range(len(ops)) if not done >> i & 1), default=INF)
        for i, op in enumerate(ops):
            if done >> i & 1 or op["start"] > first_end or done & before[i] != before[i]:
                continue
            after = step(key, state, op)
            if after is not None:
                stack.append((done | 1 << i, after))
    placed = deepest
    return False, (f"{key}: no order of its {len(ops)} operations explains the answers "
                   f"(at most {placed} of {bin(must).count('1')} answered ones fit); "
                   f"operations: {[(o['f'], o['value'], o['ok'], round(o['start'], 3), round(o['end'], 3)) for o in ops]}")


def check(history):
    """Checks every key; returns (bad keys with reasons, undecided keys)."""
    by_key = {}
    for op in history:
        by_key.setdefault(op["key"], []).append(op)
    bad, undecided = [], []
    for key, ops in sorted(by_key.items()):
        ok, why = check_key(key, ops)
        if ok is False:
            bad.append(why)
        elif ok is None:
            undecided.append(why)
    return bad, undecided


def _op(key, f, value, ok, start, end):
    return {"key": key, "f": f, "value": value, "ok": ok, "start": start, "end": end}


def self_test():
    t, c = "tenant/a", "code/f"
    cases = [
        # A read that overlaps the create may see either.
        ("overlapping read", True, [_op(t, "create", None, "created", 0, 2),
                                    _op(t, "get", None, "absent", 1, 3)]),
        # A read that starts after an acknowledged create must see it: a stale read.
        ("stale read", False, [_op(t, "create", None, "created", 0, 1),
                               _op(t, "get", None, "absent", 2, 3)]),
        # Acknowledged, then lost.
        ("lost create", False, [_op(t, "create", None, "created", 0, 1),
                                _op(t, "get", None, "present", 2, 3),
                                _op(t, "get", None, "absent", 4, 5)]),
        # A create whose answer was lost may have happened...
        ("unknown create seen", True, [_op(t, "create", None, None, 0, 1),
                                       _op(t, "get", None, "present", 5, 6)]),
        # ... or not.
        ("unknown create unseen", True, [_op(t, "create", None, None, 0, 1),
                                         _op(t, "get", None, "absent", 5, 6)]),
        # "exists" for the only create of a name: it ran twice (a retried write).
        ("duplicate create", False, [_op(t, "create", None, "exists", 0, 1)]),
        # Versions go up by one per write, in an order consistent with real time.
        ("two puts", True, [_op(c, "put", 1, 1, 0, 1), _op(c, "put", 2, 2, 2, 3),
                            _op(c, "get", None, [2, 2], 4, 5)]),
        ("concurrent puts", True, [_op(c, "put", 1, 2, 0, 3), _op(c, "put", 2, 1, 1, 2),
                                   _op(c, "get", None, [1, 2], 4, 5)]),
        ("put committed twice", False, [_op(c, "put", 1, 1, 0, 1), _op(c, "put", 2, 3, 2, 3)]),
        ("read of an overwritten value", False, [_op(c, "put", 1, 1, 0, 1),
                                                 _op(c, "put", 2, 2, 2, 3),
                                                 _op(c, "get", None, [1, 1], 4, 5)]),
        ("unknown put in between", True, [_op(c, "put", 1, 1, 0, 1),
                                          _op(c, "put", 7, None, 2, 3),
                                          _op(c, "put", 2, 3, 4, 5),
                                          _op(c, "get", None, [2, 3], 6, 7)]),
        ("read before any write", True, [_op(c, "get", None, None, 0, 1),
                                         _op(c, "put", 1, 1, 2, 3)]),
        # Forty writes whose answers were lost (a member's disk full), then one answered:
        # its version says how many of them took effect. The search must stay small (a run
        # of S14 gave up on a key with many of them) and still find an impossible count.
        ("many unknown puts, 25 took effect", True,
         [_op(c, "put", 100 + i, None, i * 0.1, i * 0.1 + 5) for i in range(40)]
         + [_op(c, "put", 1, 26, 10, 11), _op(c, "get", None, [1, 26], 12, 13)]),
        ("many unknown puts, more took effect than were sent", False,
         [_op(c, "put", 100 + i, None, i * 0.1, i * 0.1 + 5) for i in range(40)]
         + [_op(c, "put", 1, 42, 10, 11)]),
        ("many unknown puts, one read", True,
         [_op(c, "put", 100 + i, None, i * 0.1, i * 0.1 + 5) for i in range(40)]
         + [_op(c, "get", None, [117, 9], 10, 11)]),
    ]
    failed = 0
    for name, want, ops in cases:
        got, why = check_key(ops[0]["key"], ops)
        mark = "ok" if got == want else "WRONG"
        failed += got != want
        print(f"{mark:5} {name}: linearizable={got}" + (f" ({why[:80]}...)" if why else ""))
    print(f"self-test: {len(cases) - failed} of {len(cases)} verdicts right")
    return failed == 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(0 if self_test() else 1)
    print(__doc__)
    sys.exit(2)
