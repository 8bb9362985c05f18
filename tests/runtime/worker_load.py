"""The processes of test_worker_concurrency.py other than the workers: a submitter and
approvers, each a real process of its own on one PostgreSQL store (run as
``python worker_load.py submit|approve ...``; not a test module).

Each action's fate is decided by the number in its entity key (``dev17``: 17 % 10):
approved and then undone (0), approved (1), rejected (2-4), or left pending to expire
(5-9, submitted with a short ``expires_after``). Executor runs are what costs (a claim
under the ledger's write lock, a process, a second transaction), so 20% of the actions
are executed (1,500 runs with the undos) while every kind of change happens at once.
Approver ``n`` of ``k`` works the actions whose number is ``n`` modulo ``k``, so
approvers never race on one action; they race with the submitter, with each other on
the ledger head, and with the workers on the same rows. Each writes what it did, as JSON
lines, to its report."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from airgate.runtime.config import Config
from airgate.runtime.queue import Queue
from airgate.runtime.records import ActionFilter
from airgate.runtime.store import Store
from runtime_helpers import decision

APPROVERS = ("alice", "carol", "frank", "grace")
SUBMITTER = "soar"
EXPIRES_SOON = 3  # seconds: actions left to expire
BATCH = 100


def fate(number: int) -> str:
    rest = number % 10
    if rest == 0:
        return "undo"
    if rest == 1:
        return "approve"
    return "reject" if rest <= 4 else "expire"


def number_of(entity_key: str) -> int:
    return int(entity_key.removeprefix("dev"))


def config() -> Config:
    users = {name: ("active-remediation",) for name in APPROVERS}
    users["root"] = ("global-admin",)
    return Config(users=users, automation=frozenset({SUBMITTER}), execution="worker")


def submit(url: str, total: int, done_flag: Path) -> None:
    store = Store(url, busy_timeout=30)
    queue = Queue(store, config=config())
    for start in range(0, total, BATCH):
        batch = [decision(f"dev{i}", roles=("active-remediation",),
                          expires_after=EXPIRES_SOON if fate(i) == "expire" else 3600)
                 for i in range(start, min(total, start + BATCH))]
        queue.submit(batch, actor=SUBMITTER)
        time.sleep(0.05)  # spread the submissions over the run, among the approvals
    store.close()
    done_flag.write_text("done")


def approve(url: str, n: int, done_flag: Path, report: Path, deadline: float) -> None:
    store = Store(url, busy_timeout=30)
    queue = Queue(store, config=config())
    actor, mine = APPROVERS[n], lambda a: number_of(a.entity_key) % len(APPROVERS) == n
    undo_asked: set[int] = set()
    to_undo: set[int] = set()
    fate_of: dict[int, str] = {}
    with report.open("a") as out:
        def note(kind: str, ids: list[int]) -> None:
            out.write(json.dumps({"actor": actor, kind: ids}) + "\n")
            out.flush()

        while time.monotonic() < deadline:
            submitted = done_flag.exists()  # read first: what was pending after it is all
            pending = [a for a in queue.list_actions(ActionFilter(statuses=("pending",)))
                       if mine(a) and fate(number_of(a.entity_key)) != "expire"]
            fate_of.update((a.id, fate(number_of(a.entity_key))) for a in pending)
            yes = [a.id for a in pending if fate_of[a.id] in ("approve", "undo")]
            no = [a.id for a in pending if fate(number_of(a.entity_key)) == "reject"]
            for chunk in range(0, len(yes), 50):
                ids = yes[chunk:chunk + 50]
                queue.approve(ids, actor=actor)
                note("approved", ids)
            for chunk in range(0, len(no), 50):
                ids = no[chunk:chunk + 50]
                queue.reject(ids, actor=actor, reason="false positive")
                note("rejected", ids)
            # The undo-fated actions this approver approved: undone once they completed
            # (looked up by id; listing every completed action would cost more than the
            # workers' own work).
            to_undo.update(i for i in yes if fate_of[i] == "undo")
            with store.read() as tx:
                states = tx.get_actions(sorted(to_undo - undo_asked))
            done = [i for i, a in states.items() if a.status == "completed"]
            waiting = [i for i, a in states.items() if a.status in ("approved", "running")]
            for chunk in range(0, len(done), 50):
                ids = done[chunk:chunk + 50]
                queue.undo(ids, actor=actor, comment="restore")
                undo_asked.update(ids)
                note("undo", ids)
            if submitted and not pending and not done and not waiting:
                break
            time.sleep(0.3)
    store.close()


if __name__ == "__main__":
    role, url, *rest = sys.argv[1:]
    if role == "submit":
        submit(url, int(rest[0]), Path(rest[1]))
    else:
        approve(url, int(rest[0]), Path(rest[1]), Path(rest[2]),
                time.monotonic() + float(rest[3]))
