"""The store: the one place airgate talks SQL (SQLAlchemy Core over SQLite and PostgreSQL).

``database.py`` opens a store and hands out transactions, ``tx.py`` is what a
transaction can read and write (``audit.py``: the range reads that replay the
ledger against the tables; ``tokens.py``: the API tokens), ``schema.py`` holds the tables and their
versioned migrations. Importing this package loads SQLAlchemy.

May use: the runtime's records, clock and ledger hashing. Never the queue.
"""

from __future__ import annotations

from airgate.runtime.store.database import (
    DEFAULT_DB,
    ENV_DB,
    Store,
    StoreNotFound,
    StoreUnavailable,
    resolve_url,
)
from airgate.runtime.store.tokens import TokenRow
from airgate.runtime.store.tx import Tx

__all__ = ["DEFAULT_DB", "ENV_DB", "Store", "StoreNotFound", "StoreUnavailable", "TokenRow",
           "Tx", "resolve_url"]
