"""Signed checkpoints of the ledger, and verifying a store against them and against itself.

The ledger's head lives in the store, so whoever can write the store can rewrite
the chain and its head together, and the chain still agrees with itself. A
checkpoint is the head (entry number, hash, time of that entry, the store's
identity) signed with an Ed25519 key kept outside the store, written where the
store's writers cannot rewrite it (a file of one JSON line per checkpoint, or
stdout for a SIEM). ``verify_store`` then checks that the chain still passes
through every checkpoint, and replays the ledger against the actions, approvals
and evidence tables.

A worker or server checkpoints on a schedule with ``append_checkpoint(path,
create_checkpoint(store, key, earlier=load_checkpoints([path], public_of(key))))``:
``earlier`` makes it refuse to sign a ledger that no longer holds its earlier
checkpoints. Signing needs the ``cryptography`` package (``airgate[ledger]``),
imported only here and only when a key is used.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airgate.errors import InputError, Location, StoreError, UsageError
from airgate.runtime.clock import format_time
from airgate.runtime.governance import CONFIG, DEMO, settings_problems
from airgate.runtime.ledger import (
    Mark,
    VerifyResult,
    canonical_text,
    differences,
    evidence_digest,
    fold,
    strict_loads,
    verify_rows,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    from airgate.runtime.store import Store, Tx

FORMAT = "airgate-checkpoint/1"
_FIELDS = ("format", "store", "seq", "hash", "entry_at", "signed_at", "key_id", "signature")
REPLAY_CHUNK = 2000  # actions replayed per query round


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        raise UsageError("signed checkpoints need the cryptography package:"
                         " pip install 'airgate[ledger]'") from None
    return serialization


# ---------------------------------------------------------------- keys
def generate_key(out: str | os.PathLike[str], public_out: str | os.PathLike[str] | None = None
                 ) -> str:
    """Write a new Ed25519 private key to ``out`` (mode 0600, never over an existing file)
    and its public key to ``public_out`` (default ``out`` + ``.pub``); return the public
    key as PEM text."""
    serialization = _crypto()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = _public_pem(key.public_key())
    pub_path = Path(public_out) if public_out is not None else Path(str(out) + ".pub")
    for path in (Path(out), pub_path):
        if path.exists():
            raise InputError(f"{path} exists: refusing to overwrite a key")
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as err:
        raise InputError(f"cannot write the key {out}: {err.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    pub_path.write_text(public, encoding="ascii")
    return public


def _public_pem(key: Ed25519PublicKey) -> str:
    serialization = _crypto()
    return str(key.public_bytes(serialization.Encoding.PEM,
                                serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii"))


def key_id(key: Ed25519PublicKey) -> str:
    """A short name for a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    serialization = _crypto()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """Read a private key written by ``generate_key``; refuse one others may read."""
    serialization = _crypto()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        mode = os.stat(path).st_mode
        data = Path(path).read_bytes()
    except OSError as err:
        raise InputError(f"cannot read the key {path}: {err.strerror}") from None
    if os.name == "posix" and mode & 0o077:
        raise InputError(f"{path}: a private key must be readable by its owner only"
                         f" (mode {mode & 0o777:o}; chmod 600 it)")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as err:
        raise InputError(f"{path}: not a PEM private key: {err}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{path}: not an Ed25519 key")
    return key


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    serialization = _crypto()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise InputError(f"cannot read the public key {path}: {err.strerror}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as err:
        raise InputError(f"{path}: not a PEM public key: {err}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"{path}: not an Ed25519 public key")
    return key


def public_of(key: Ed25519PrivateKey) -> Ed25519PublicKey:
    return key.public_key()


# ---------------------------------------------------------------- checkpoints
@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: the store ``store`` had ``seq`` entries, the last with ``hash``."""

    store: str
    seq: int
    hash: str
    entry_at: str | None
    signed_at: str
    key_id: str
    signature: str = ""
    source: str = field(default="", compare=False)  # FILE:LINE it was read from

    def payload(self) -> dict[str, Any]:
        """What the signature covers: every field but the signature."""
        out = asdict(self)
        del out["signature"], out["source"]
        return {"format": FORMAT, **out}

    def as_dict(self) -> dict[str, Any]:
        return {**self.payload(), "signature": self.signature}

    def line(self) -> str:
        return canonical_text(self.as_dict())

    @property
    def name(self) -> str:
        return f"checkpoint {self.source or self.seq}"


def create_checkpoint(store: Store, key: Ed25519PrivateKey, *,
                      earlier: Sequence[Checkpoint] = ()) -> Checkpoint:
    """Sign the store's current head, after checking that the chain verifies and still
    passes through the ``earlier`` checkpoints (a rewritten ledger is never signed)."""
    with store.read() as tx:
        store_id, v2_from = tx.ledger_meta()
        if store_id is None:
            raise StoreError("the store has no identity (its ledger_meta row is gone):"
                             " it cannot be checkpointed")
        _same_store(earlier, store_id)
        head = tx.ledger_head()
        result = verify_rows(tx.iter_ledger_rows(), head=head, v2_from=v2_from,
                             marks=[Mark(c.seq, c.hash, c.name) for c in earlier])
        entry_at = tx.last_entry_at() if head[0] else None
    if not result.ok:
        raise StoreError(f"will not sign a broken ledger: entry {result.bad_seq}:"
                         f" {result.message}")
    draft = Checkpoint(store_id, head[0], head[1], entry_at,
                       format_time(dt.datetime.now(dt.UTC)), key_id(key.public_key()))
    signature = key.sign(canonical_text(draft.payload()).encode("ascii"))
    return Checkpoint(**{**asdict(draft), "signature": base64.b64encode(signature).decode()})


def append_checkpoint(path: str | os.PathLike[str], checkpoint: Checkpoint) -> None:
    """Add one checkpoint line to a file of checkpoints (created if missing)."""
    with open(path, "a", encoding="ascii") as f:
        f.write(checkpoint.line() + "\n")
        f.flush()
        os.fsync(f.fileno())


def load_checkpoints(paths: Iterable[str | os.PathLike[str]], public_key: Ed25519PublicKey
                     ) -> list[Checkpoint]:
    """Read checkpoint files (one JSON line each); every signature must be by ``public_key``.
    A missing, malformed, edited or foreign checkpoint is an InputError at FILE:LINE."""
    from cryptography.exceptions import InvalidSignature

    wanted = key_id(public_key)
    out: list[Checkpoint] = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"cannot read the checkpoint file {path}: {err}") from None
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = Location(str(path), number, 1)
            cp = _parse(line, where)
            if cp.key_id != wanted:
                raise InputError(f"signed by another key (key id {cp.key_id}; the public key"
                                 f" given is {wanted})", where)
            try:
                public_key.verify(base64.b64decode(cp.signature, validate=True),
                                  canonical_text(cp.payload()).encode("ascii"))
            except (InvalidSignature, ValueError):
                raise InputError("its signature does not verify: the checkpoint was edited"
                                 " or not signed by this key", where) from None
            out.append(cp)
    return out


def _parse(line: str, where: Location) -> Checkpoint:
    try:
        data = strict_loads(line)
    except (ValueError, RecursionError) as err:
        raise InputError(f"not a checkpoint (invalid JSON: {err})", where) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"not a checkpoint (no \"format\": \"{FORMAT}\")", where)
    if sorted(data) != sorted(_FIELDS):
        raise InputError(f"a checkpoint has exactly the fields {', '.join(_FIELDS)}", where)
    types = {"store": str, "seq": int, "hash": str, "signed_at": str, "key_id": str,
             "signature": str}
    for name, kind in types.items():
        if not isinstance(data[name], kind) or isinstance(data[name], bool):
            raise InputError(f"checkpoint field {name} must be a {kind.__name__}", where)
    if data["entry_at"] is not None and not isinstance(data["entry_at"], str):
        raise InputError("checkpoint field entry_at must be a string or null", where)
    del data["format"]
    return Checkpoint(**data, source=str(where))


def _same_store(checkpoints: Sequence[Checkpoint], store_id: str | None) -> None:
    for cp in checkpoints:
        if cp.store != store_id:
            raise InputError(f"{cp.name} is of another store ({cp.store}; this store is"
                             f" {store_id or 'without an identity'})")


# ---------------------------------------------------------------- verifying a store
@dataclass(frozen=True)
class StoreReport:
    """What ``ledger verify`` found: the chain, and where the tables differ from it."""

    chain: VerifyResult
    checkpoints: int = 0
    last_checkpoint: int | None = None
    state: list[tuple[int, str]] = field(default_factory=list)  # (action id, difference)
    settings: list[str] = field(default_factory=list)  # store-wide settings vs the ledger

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.state and not self.settings

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.chain.count, "chain_ok": self.chain.ok,
                "first_bad_entry": self.chain.bad_seq,
                "chain_message": self.chain.message, "checkpoints": self.checkpoints,
                "last_checkpoint_entry": self.last_checkpoint,
                "state": [{"action_id": a, "problem": p} for a, p in self.state],
                "settings": list(self.settings)}


def verify_store(store: Store, *, checkpoints: Sequence[Checkpoint] = (),
                 state: bool = True) -> StoreReport:
    """Verify the chain (through every checkpoint, whose signatures ``load_checkpoints``
    checked) and, with ``state``, replay the ledger against the tables, all in one
    snapshot of the store."""
    with store.read() as tx:
        store_id, v2_from = tx.ledger_meta()
        try:
            _same_store(checkpoints, store_id)
        except InputError as err:
            return StoreReport(VerifyResult(False, 0, None, err.message), len(checkpoints))
        marks = [Mark(c.seq, c.hash, c.name) for c in checkpoints]
        chain = verify_rows(tx.iter_ledger_rows(), head=tx.ledger_head(), v2_from=v2_from,
                            marks=marks)
        problems = replay(tx) if state else []
        settings = settings_problems(tx.get_setting(DEMO), tx.get_setting(CONFIG),
                                     *tx.store_entries()) if state else []
    last = max((c.seq for c in checkpoints), default=None)
    return StoreReport(chain, len(checkpoints), last, problems, settings)


def replay(tx: Tx, *, chunk: int = REPLAY_CHUNK) -> list[tuple[int, str]]:
    """Every difference between each action's ledger and its rows, by action id."""
    out: list[tuple[int, str]] = []
    highest = tx.highest_action_id()
    for low in range(1, highest + 1, chunk):
        high = low + chunk - 1
        actions = {a.id: a for a in tx.actions_range(low, high)}
        ledgers = tx.ledger_for_range(low, high)
        approvals = tx.approvals_range(low, high)
        evidence = tx.evidence_range(low, high)
        for action_id in sorted(set(actions) | set(ledgers)):
            a = actions.get(action_id)
            if a is None:
                out.append((action_id, "it is in the ledger but not in the actions table"
                                       " (deleted?)"))
                continue
            folded = fold(action_id, ledgers.get(action_id, ()))
            found = differences(
                folded, status=a.status, approval=a.approval, run_key=a.run_key,
                fields={"action_type": a.action_type, "entity_key": a.entity_key,
                        "expires_at": a.expires_at},
                approvals=approvals.get(action_id, []),
                evidence=[_digest(t) for t in evidence.get(action_id, [])])
            out.extend((action_id, problem) for problem in found)
    return out


def _digest(text: str) -> str:
    try:
        return evidence_digest(strict_loads(text))
    except (ValueError, RecursionError):
        return "unreadable"  # matches no ledgered hash
