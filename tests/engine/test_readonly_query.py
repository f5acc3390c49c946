"""``Store.query`` is read-only at the SQLite level: hostile statements on a real WAL file change nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine.errors import QueryStopped, StoreError
from engine.records import ValidationResult
from engine.store import DEFAULT_ROW_LIMIT, EXAMPLE_QUERIES, QueryStop, open_store
from engine.store.readonly import MAX_RESULT_BYTES, MAX_VALUE_BYTES
from tests.engine.test_store import new_run

#: statement -> what the refusal names
HOSTILE = {
    "ATTACH DATABASE 'x.db' AS x": "ATTACH",
    "VACUUM INTO 'copy.db'": "VACUUM",
    "VACUUM": "VACUUM",
    "PRAGMA journal_mode=DELETE": "PRAGMA journal_mode=DELETE",
    "PRAGMA query_only=OFF": "PRAGMA query_only=OFF",
    "PRAGMA locking_mode=EXCLUSIVE": "PRAGMA locking_mode=EXCLUSIVE",
    "PRAGMA wal_checkpoint(TRUNCATE)": "PRAGMA wal_checkpoint=TRUNCATE",
    "PRAGMA wal_checkpoint": "PRAGMA wal_checkpoint",
    "PRAGMA user_version = 99": "PRAGMA user_version=99",
    "BEGIN IMMEDIATE": "BEGIN",
    "SAVEPOINT s": "SAVEPOINT",
    "DELETE FROM runs": "DELETE",
    "WITH x AS (SELECT 1) UPDATE runs SET name = 'x'": "UPDATE",
    "  -- a comment\n INSERT INTO runs (name) VALUES ('x')": "INSERT",
    "CREATE TEMP TABLE t (a)": "CREATE",
    "DROP TABLE runs": "DROP",
    "REINDEX": "REINDEX",
    "ANALYZE": "ANALYZE",
    "SELECT 1; DELETE FROM runs": "one statement at a time",
    "SELECT load_extension('x')": "load_extension()",
    "SELECT hex(fts3_tokenizer('simple'))": "fts3_tokenizer()",  # a pointer into the process
}


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of the folder but the WAL index (-shm), which readers update by design."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.endswith("-shm")}


@pytest.fixture()
def live_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A WAL database with rows in its -wal, held open by a writer as a running engine would;
    the working directory is its folder, where a relative ATTACH or VACUUM INTO would write."""
    folder = tmp_path / "db"
    path = folder / "runs.db"
    writer = open_store(path)
    train_id = new_run(writer)
    val_id = new_run(writer, kind="validate", out_dir="val", parent_id=train_id)
    writer.add_validation(val_id, ValidationResult(epoch=1, eer=0.2, n_trials=10), train_run_id=train_id)
    assert (folder / "runs.db-wal").stat().st_size > 0
    monkeypatch.chdir(folder)
    yield path
    writer.close()


def test_hostile_statements_are_refused_and_change_no_byte(live_db: Path) -> None:
    folder = live_db.parent
    before = _snapshot(folder)
    with open_store(live_db, readonly=True) as reader:
        for sql, named in HOSTILE.items():
            with pytest.raises(StoreError) as refused:
                reader.query(sql)
            message = str(refused.value)
            assert message.startswith("read-only: ") and named in message, (sql, message)
            assert "\n" not in message
            assert _snapshot(folder) == before, sql  # no byte changed, no file created
        assert tuple(reader.query("PRAGMA journal_mode")) == (["journal_mode"], [("wal",)])
        assert tuple(reader.query("SELECT COUNT(*) FROM runs")) == (["COUNT(*)"], [(2,)])
    assert _snapshot(folder) == before


def test_a_writable_store_queries_read_only_too(live_db: Path) -> None:
    with open_store(live_db) as store:
        before = _snapshot(live_db.parent)
        for sql in ("ATTACH DATABASE 'x.db' AS x", "PRAGMA journal_mode=DELETE", "PRAGMA query_only=OFF"):
            with pytest.raises(StoreError, match="^read-only: "):
                store.query(sql)
        assert _snapshot(live_db.parent) == before
        new_run(store)  # the store's own connection still writes
        assert store.query("SELECT COUNT(*) FROM runs")[1] == [(3,)]


def test_reads_still_work(live_db: Path) -> None:
    with open_store(live_db, readonly=True) as reader:
        for title, sql in EXAMPLE_QUERIES.items():
            columns, _ = reader.query(sql)
            assert columns, title
        columns, rows = reader.query(EXAMPLE_QUERIES["best EER per run"])
        assert [dict(zip(columns, r, strict=True))["best_eer"] for r in rows] == [0.2]
        counted = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) SELECT i FROM n"
        assert reader.query(counted)[1] == [(1,), (2,), (3,)]
        assert reader.query("/* why */ SELECT kind FROM runs WHERE id = ?;", (1,))[1] == [("train",)]
        assert "name" in [r[1] for r in reader.query("PRAGMA table_info(runs)")[1]]
        assert reader.query("SELECT COUNT(*) FROM pragma_table_info('runs')")[1][0][0] > 10
        assert reader.query("EXPLAIN QUERY PLAN SELECT * FROM runs")[1]
        assert reader.query("VALUES (1), (2)", limit=1)[1] == [(1,)]


#: a query that never ends on its own; a test that runs it would hang in C where it is not
#: stopped, out of reach of a signal: the thread method of pytest-timeout ends such a run
ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


@pytest.mark.timeout(60, method="thread")
def test_an_endless_query_stops_at_its_time_limit(live_db: Path) -> None:
    with open_store(live_db, readonly=True) as reader:
        with pytest.raises(QueryStopped) as stopped:
            reader.query(ENDLESS, time_limit=0.3)
        assert str(stopped.value).startswith("query stopped after 0.3 s (time limit; ")
        assert "\n" not in str(stopped.value) and not stopped.value.interrupted
        assert reader.query("SELECT COUNT(*) FROM runs").rows == [(2,)]  # the store reads on


@pytest.mark.timeout(60, method="thread")
def test_an_endless_query_stops_when_another_thread_says_so(live_db: Path) -> None:
    stop = QueryStop()
    timer = threading.Timer(0.3, stop.stop)
    timer.start()
    try:
        with open_store(live_db, readonly=True) as reader, pytest.raises(QueryStopped) as stopped:
            reader.query(ENDLESS, time_limit=None, stop=stop)
    finally:
        timer.cancel()
    assert stopped.value.interrupted and "(interrupted)" in str(stopped.value)


def _counting(n: int) -> str:
    return f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) SELECT x FROM c"


def test_query_returns_the_default_row_limit_and_says_there_were_more(live_db: Path) -> None:
    assert DEFAULT_ROW_LIMIT == 10_000
    with open_store(live_db, readonly=True) as reader:
        result = reader.query(_counting(DEFAULT_ROW_LIMIT + 5))
        assert len(result.rows) == DEFAULT_ROW_LIMIT and result.truncated
        assert result.rows[-1] == (DEFAULT_ROW_LIMIT,)
        everything = reader.query(_counting(DEFAULT_ROW_LIMIT + 5), limit=None)
        assert len(everything.rows) == DEFAULT_ROW_LIMIT + 5 and not everything.truncated
        exact = reader.query(_counting(DEFAULT_ROW_LIMIT))
        assert len(exact.rows) == DEFAULT_ROW_LIMIT and not exact.truncated


def test_a_huge_value_is_refused_at_once_and_huge_results_are_cut(live_db: Path) -> None:
    """zeroblob(1e9) is one instruction no time limit stops (22 s past a 5 s limit); 10,000 rows of
    large values filled the memory."""
    with open_store(live_db, readonly=True) as reader:
        with pytest.raises(StoreError, match="too big"):
            reader.query("SELECT zeroblob(1000000000)", time_limit=5)
        assert len(reader.query(f"SELECT zeroblob({MAX_VALUE_BYTES})").rows[0][0]) == MAX_VALUE_BYTES
        many = reader.query(f"SELECT zeroblob({MAX_VALUE_BYTES}) FROM ({_counting(100)})")
        assert many.truncated and len(many.rows) == MAX_RESULT_BYTES // MAX_VALUE_BYTES + 1
