"""What governs a store, kept in the store: the demo marker and the pushed config.

A caller picks a config file, so a file cannot be what decides who approves on a
store others share: ``--config evil.yaml`` would make anyone a global admin. The
users, roles, automation identities and executors that govern a store are pushed
into it (``airgate config push``) by a global admin of the config it holds; the
first push on a store without one bootstraps it, and must name its pusher a
global admin. Each push is a ``configured`` ledger entry with the config's hash.

A pinned clock (``AIRGATE_NOW``) may write only to a store created for demos
(``airgate init --demo`` on a new store: an ``initialized`` ledger entry and the
``demo`` setting); a store cannot become a demo store once it holds anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airgate.catalog import GLOBAL_ADMIN
from airgate.errors import PermissionDenied, StoreError, TransitionError
from airgate.runtime.config import Config, config_from_data, governing_hash
from airgate.runtime.guards import check_actor
from airgate.runtime.records import LedgerEvent

if TYPE_CHECKING:
    from airgate.runtime.store import Store

DEMO = "demo"
CONFIG = "config"


@dataclass(frozen=True)
class StoreSettings:
    """The store's own settings as read once: whether it is a demo store, and the
    governing config pushed into it (None when nobody pushed one)."""

    demo: bool
    config: Mapping[str, Any] | None
    config_by: str | None = None
    config_at: str | None = None

    def apply(self, local: Config) -> Config:
        """``local`` with its governing part replaced by the store's, when it has one."""
        if self.config is None:
            return local
        return local.governed(self.config, updated_by=self.config_by or "",
                              updated_at=self.config_at or "")


def read_settings(store: Store) -> StoreSettings:
    """The store's settings, checked against the ledger entries that made them.

    The settings table is as easy to edit as any other: a ``demo`` row without its
    ``initialized`` entry, or a config whose hash is not the last ``configured``
    entry's, would let a writer of the database move the clock or make themselves an
    admin. Either is refused (StoreError) until a global admin pushes the config again.
    """
    with store.read() as tx:
        demo = tx.get_setting(DEMO)
        config = tx.get_setting(CONFIG)
        configured, initialized = tx.store_entries()
    problems = settings_problems(demo, config, configured, initialized)
    if problems:
        raise StoreError("the store's settings do not match its ledger: " + "; ".join(problems)
                         + " (run `airgate ledger verify`; a global admin restores the config"
                         " with `airgate config push`)")
    if config is None:
        return StoreSettings(bool(demo and demo["value"] is True), None)
    return StoreSettings(bool(demo and demo["value"] is True), config["value"],
                         config["updated_by"], config["updated_at"])


def governed_config(store: Store, local: Config,
                    settings: StoreSettings | None = None) -> tuple[Config, str | None]:
    """The config a queue over ``store`` obeys, and a warning for the caller to show.

    The store's pushed config governs when there is one (``local`` then only gives the
    store location and the like); on PostgreSQL without one, a file the caller picks
    must never decide who approves, so nobody holds a role until a global admin pushes.
    """
    settings = settings or read_settings(store)
    config = settings.apply(local)
    warning = None
    if (settings.config is not None and local.sets_governing()
            and governing_hash(local.data) != governing_hash(settings.config)):
        warning = (f"{local.file}: users, automation and executors come from the config"
                   f" stored in the database (pushed by {settings.config_by} at"
                   f" {settings.config_at}); the ones in this file are ignored")
    elif settings.config is None and not store.sqlite:
        config = Config(store=local.store, file=local.file)
        if local.sets_governing():
            warning = (f"{local.file}: on PostgreSQL, users, automation and executors come"
                       " only from the database, which holds none yet (a global admin runs"
                       " airgate config push); the ones in this file are ignored")
    return config, warning


def settings_problems(demo: Mapping[str, Any] | None, config: Mapping[str, Any] | None,
                      configured: Mapping[str, Any] | None, initialized: bool) -> list[str]:
    """How the settings rows differ from the ledger entries that made them."""
    found = []
    if demo is not None and demo["value"] is True and not initialized:
        found.append("the demo marker has no 'initialized' ledger entry (a live store"
                     " marked as a demo store by hand?)")
    if config is not None and configured is None:
        found.append("a governing config is stored but no 'configured' ledger entry made it")
    elif config is None and configured is not None:
        found.append(f"the governing config pushed in ledger entry {configured['seq']} is"
                     " missing from the store (deleted?)")
    elif config is not None and configured is not None:
        digest = governing_hash(config["value"])
        if digest != configured.get("sha256"):
            found.append(f"the stored governing config (sha256 {digest[:12]}) is not the one"
                         f" ledger entry {configured['seq']} pushed (sha256"
                         f" {str(configured.get('sha256'))[:12]}): edited outside"
                         " `airgate config push`")
    return found


def init_demo(store: Store, *, actor: str, at: str) -> bool:
    """Mark a new, empty store as a demo store; False when it already is one.

    Refused (TransitionError) on a store that holds any ledger entry: making a live
    store a demo store would let anyone move its clock.
    """
    actor = check_actor(actor)
    with store.write() as tx:
        if tx.get_setting(DEMO) is not None:
            return False
        seq, _ = tx.ledger_head()
        if seq:
            raise TransitionError(
                f"this store already holds {seq} ledger entries: only a new store can be"
                " made a demo store")
        tx.put_setting(DEMO, True, at, actor)
        tx.log(LedgerEvent("initialized", actor, None, None, None,
                           "demo store: AIRGATE_NOW may pin its clock", {"demo": True}), at)
    return True


def push_config(store: Store, data: Mapping[str, Any], *, actor: str, at: str) -> str:
    """Store the governing part of a validated config document; returns its SHA-256.

    Only a global admin of the stored config may push; the first push bootstraps and
    must make its pusher a global admin. The new config must keep a global admin, or
    nobody could ever change it again. A refusal is a committed ``refused`` entry.
    """
    actor = check_actor(actor)
    new = config_from_data(data, None)
    digest = governing_hash(new.data)
    if not any(GLOBAL_ADMIN in roles for roles in new.users.values()):
        raise PermissionDenied("the config names no global-admin: nobody could change it"
                               " after this push")
    with store.write() as tx:
        # Who may push is decided by the users the last push put in the ledger, not by
        # the settings row, which a writer of the database could have edited.
        configured, _ = tx.store_entries()
        bootstrap = configured is None
        governing = new if configured is None else Config(users={
            name: tuple(roles) for name, roles in (configured.get("users") or {}).items()})
        why = None
        if GLOBAL_ADMIN not in governing.roles_of(actor):
            why = (f"{actor} is not a global-admin of the config it would replace"
                   if not bootstrap else
                   f"the first push must make its pusher a global-admin; {actor} is not one")
        if why is None:
            tx.put_setting(CONFIG, dict(new.data), at, actor)
            # Roles and identities are who may act: in the ledger. Executors' argv may hold
            # a secret: only which action types have one, and the hash of the whole.
            tx.log(LedgerEvent("configured", actor, None, None, None, None, {
                "sha256": digest, "bootstrap": bootstrap,
                "users": {k: list(v) for k, v in sorted(new.users.items())},
                "automation": sorted(new.automation),
                "executors": sorted(new.executors)}), at)
        else:
            tx.log(LedgerEvent("refused", actor, None, None, None, why,
                               {"attempt": "config push", "sha256": digest}), at)
    if why is not None:
        raise PermissionDenied(f"cannot push the config: {why}")
    return digest
