"""Stage 5, the runtime: what happens to decisions once they are submitted.

- ``queue.py``: the ``Queue`` facade the CLI and other front ends use;
- ``submit.py``, ``approvals.py``, ``undo.py``: the operations it offers
  (enqueue and merge, approve/reject/expire with roles and quorum, undo, redo,
  timed reverts), each taking a ``context.Runtime``;
- ``context.py``: the store, config, clock and executors an operation works
  with, and carrying out a running action; ``guards.py``: who may act;
- ``executors/``: one module per executor type (a new one goes there);
- ``store/``: SQLite and PostgreSQL (the only SQL); ``ledger.py``: the hash chain
  and the state it binds; ``checkpoint.py``: signed checkpoints, verifying a store;
- ``governance.py``: the config and demo marker kept in the store, bound to the
  ledger; ``notify.py``: the notifications webhook (pending, expired, failed);
- ``records.py``: actions, states and ledger entries; ``config.py``: users,
  roles, executors; ``clock.py``: the one clock; ``investigations.py``: status.

May use: the engine and everything below it. Never the CLI or click.
Importing this package loads nothing; ``store/`` loads SQLAlchemy.
"""
