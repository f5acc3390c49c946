"""The runs database: one SQLite file (WAL) written by every engine process, read by the TUI.

Never imports torch. Everything SQL lives in this package; see ``Store`` for the
methods and ``EXAMPLE_QUERIES`` for queries worth knowing.
"""

from __future__ import annotations

from engine.store.db import default_db_path, read_only_reason
from engine.store.events import EventWriter, open_writer
from engine.store.importing import import_events
from engine.store.liveness import HEARTBEAT_INTERVAL
from engine.store.netfs import is_network_fs
from engine.store.queries import EXAMPLE_QUERIES
from engine.store.readonly import DEFAULT_ROW_LIMIT, DEFAULT_TIME_LIMIT_S, QueryResult, QueryStop
from engine.store.runs import LIVE_STATUSES, RUN_KINDS, RUN_STATUSES, Store, existing_store, open_store

__all__ = [
    "DEFAULT_ROW_LIMIT", "DEFAULT_TIME_LIMIT_S", "EXAMPLE_QUERIES", "HEARTBEAT_INTERVAL", "LIVE_STATUSES",
    "RUN_KINDS", "RUN_STATUSES", "EventWriter", "QueryResult", "QueryStop", "Store", "default_db_path",
    "existing_store", "import_events", "is_network_fs", "open_store", "open_writer", "read_only_reason",
]
