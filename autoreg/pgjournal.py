"""Optuna's journal storage with its journal in a PostgreSQL table: ``journal+postgresql://``.

Optuna's RDB schema spends about 55 SQL statements on an autoreg trial; this journal spends
about 14 round trips, 5 of them a read that finds nothing new. Every study of a database shares
one table, ``autoreg_journal`` (one row per journal entry, as a journal file has one line per
entry); workers on every machine append to it and replay it.

Two rules keep every replay the same:

- An append draws its row ids and commits under one transaction-scoped advisory lock, so rows
  commit in id order: a reader that sees row N + 1 sees row N too. A reader therefore asks only
  for the rows after the last id it read.
- An append is one call of the function ``autoreg_journal_append``: take the lock, insert, and
  return every row after the caller's last id, read after the lock was granted. Optuna reads
  right after each append, and that read is then already answered.

Durability follows the journal file's rule (see ``storage._journal_file``): entries that change
a running trial (its creation, parameters, attributes) commit without waiting for the disk
(``synchronous_commit`` off for that transaction); an entry that changes a trial's or a study's
state waits, and since the write-ahead log is flushed in order, it makes every entry before it
durable too. Only a server crash in the middle of a trial can lose that trial's latest entries;
a worker that then finds its last-read entry gone stops with a clear error rather than go on
from a history the database no longer has.

Heartbeats live in ``autoreg_journal_heartbeat``, one row per trial, stamped with the
database's clock, so that machines whose clocks disagree still agree on which trial is stale.
Trial ids are unique within a database's journal, so they key it alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
import warnings
from typing import Any

from optuna.storages import JournalStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import BaseJournalBackend
from optuna.trial import TrialState

from .errors import StudyError, UsageError, first_line
from .storage import _UNSYNCED_OPS

SCHEMES = ("journal+postgresql://", "journal+postgresql+psycopg://")
TABLE = "autoreg_journal"
HEARTBEAT_TABLE = "autoreg_journal_heartbeat"
CONNECT_TIMEOUT = 10  # seconds, unless the URL sets connect_timeout
#: How long a dropped connection is tried again (a server restarting) before giving up.
RECONNECT_SECONDS = 60.0


def advisory_key(name: str) -> int:
    """A PostgreSQL advisory lock key (a signed 64-bit number) for ``name``."""
    digest = hashlib.sha1(f"autoreg-{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


_APPEND_KEY = advisory_key("journal-append")
_CREATE_KEY = advisory_key("journal-create")

APPEND_FUNCTION = "autoreg_journal_append"

# Run once per database, under a lock, so that workers opening a new database together all
# get in. The append is a function so that it is one prepared statement and one round trip:
# lock, insert, then read what is new. Each statement of a VOLATILE function takes a fresh
# snapshot (READ COMMITTED), so the read sees every append that committed before the lock was
# granted.
_CREATE = f"""
SELECT pg_advisory_xact_lock({_CREATE_KEY});
CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, log text NOT NULL);
CREATE TABLE IF NOT EXISTS {HEARTBEAT_TABLE} (
    trial_id bigint PRIMARY KEY, beat timestamptz NOT NULL DEFAULT now());
CREATE OR REPLACE FUNCTION {APPEND_FUNCTION}(logs text[], after bigint, durable boolean)
RETURNS TABLE (id bigint, log text) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT durable THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    PERFORM pg_advisory_xact_lock({_APPEND_KEY});
    INSERT INTO {TABLE} (log) SELECT x FROM unnest(logs) WITH ORDINALITY AS u(x, n) ORDER BY n;
    RETURN QUERY SELECT j.id, j.log FROM {TABLE} j WHERE j.id > after ORDER BY j.id;
END $$;
"""
_EXISTS = (f"SELECT to_regclass('{TABLE}') IS NOT NULL AND to_regclass('{HEARTBEAT_TABLE}') "
           f"IS NOT NULL AND to_regprocedure('{APPEND_FUNCTION}(text[],bigint,boolean)') "
           "IS NOT NULL")
_APPEND = f"SELECT id, log FROM {APPEND_FUNCTION}(%s, %s, %s)"
_HAS = f"SELECT count(*) FROM {TABLE} WHERE id = %s"
_READ_AFTER = f"SELECT id, log FROM {TABLE} WHERE id > %s ORDER BY id"
_READ_FROM = f"SELECT id, log FROM {TABLE} ORDER BY id OFFSET %s"
_BEAT = (f"INSERT INTO {HEARTBEAT_TABLE} (trial_id) VALUES (%s) "
         "ON CONFLICT (trial_id) DO UPDATE SET beat = now()")
_STALE = (f"SELECT trial_id FROM {HEARTBEAT_TABLE} WHERE trial_id = ANY(%s) "
          "AND beat < now() - make_interval(secs => %s)")


def conninfo(url: str) -> str:
    """The libpq connection string of ``journal+postgresql[+psycopg]://user:pw@host:port/db``
    (query parameters are libpq's: ``?sslmode=require``)."""
    match = re.match(r"^journal\+postgresql(\+psycopg)?://", url)
    if match is None:
        raise UsageError(f"not a journal+postgresql:// URL: {_redact(url)}")
    info = "postgresql://" + url[match.end():]
    _psycopg()
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    if "connect_timeout" not in conninfo_to_dict(info):
        info = make_conninfo(info, connect_timeout=CONNECT_TIMEOUT)
    return info


def _redact(url: str) -> str:
    from .storage import redact

    return redact(url)


def _psycopg():
    try:
        import psycopg
    except ImportError:
        raise UsageError("journal+postgresql:// needs the psycopg driver: "
                         "pip install \"autoreg[postgres]\"") from None
    return psycopg


class _Session:
    """One database connection, opened when first needed and opened again if it drops (a
    server restart), so that a long-running worker survives one."""

    def __init__(self, url: str):
        self.url = url
        self.lock = threading.RLock()
        self._conn = None
        self._cur = None  # one cursor, reused: a new one per statement costs a third more

    def connect(self):
        conn = _psycopg().connect(conninfo(self.url), autocommit=True)
        # Reads must see what committed before the append lock was granted (see above). The
        # keepalives make the server notice within about a minute that a worker's machine is
        # gone, and free the locks its session held.
        conn.execute("SET default_transaction_isolation TO 'read committed'; "
                     "SET tcp_keepalives_idle TO 30; SET tcp_keepalives_interval TO 10; "
                     "SET tcp_keepalives_count TO 3")
        return conn

    def close(self) -> None:
        conn, self._conn, self._cur = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def __del__(self) -> None:
        # Optuna's storages have no close(): a storage dropped by its program closes its
        # connections here, rather than leaving them to the driver's warning.
        self.close()

    def _connect_patiently(self):
        """Connect, trying for up to :data:`RECONNECT_SECONDS` while the server is away."""
        psycopg = _psycopg()
        deadline = time.monotonic() + RECONNECT_SECONDS
        pause = 0.2
        while True:
            try:
                return self.connect()
            except psycopg.OperationalError:
                if time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(2 * pause, 5.0)

    def run(self, work, reconnect: bool = True):
        """``work(cursor, again)`` under the lock. On a dropped connection, connect again (for
        up to :data:`RECONNECT_SECONDS`) and call it once more with ``again=True``; a second
        failure is a :class:`StudyError`."""
        psycopg = _psycopg()
        with self.lock:
            again = False
            while True:
                try:
                    if self._conn is None:
                        self._conn = self._connect_patiently() if again else self.connect()
                        self._cur = self._conn.cursor()
                    return work(self._cur, again)
                except psycopg.OperationalError as exc:
                    conn = self._conn
                    dropped = conn is None or conn.closed or getattr(conn, "broken", False)
                    self.close()
                    if not dropped or again or not reconnect:
                        raise StudyError(f"the journal database {_redact(self.url)} failed: "
                                         f"{first_line(exc)}") from None
                    again = True


class PostgresJournalBackend(BaseJournalBackend):
    """Optuna's journal log in the ``autoreg_journal`` table of a PostgreSQL database."""

    def __init__(self, url: str):
        self.url = url
        self._reset()
        conn = self._db.connect()  # errors here are the caller's to report (a bad URL)
        try:
            if not conn.execute(_EXISTS).fetchone()[0]:
                conn.execute(_CREATE)
        except BaseException:
            conn.close()
            raise
        self._db._conn, self._db._cur = conn, conn.cursor()

    def _reset(self) -> None:
        self._db = _Session(self.url)
        self._locks = _Session(self.url)  # a second connection, for locks held across calls
        self._held = 0
        self._position = (0, 0)  # (entries read, id of the last one) after the last read
        self._pending: tuple[int, list] | None = None  # rows the last append read

    def __getstate__(self) -> dict:
        return {"url": self.url}

    def __setstate__(self, state: dict) -> None:
        self.url = state["url"]
        self._reset()

    def read_logs(self, log_number_from: int) -> list[dict[str, Any]]:
        return self._db.run(lambda cur, again: self._read(cur, log_number_from, again))

    def _check_position(self, cur) -> None:
        """After a dropped connection: the last entry read must still be there (a server
        crash may lose entries committed without waiting for the disk)."""
        last = self._position[1]
        if last and not cur.execute(_HAS, (last,)).fetchone()[0]:
            raise StudyError(f"the journal database {_redact(self.url)} lost its latest "
                             "entries (a server crash during a trial); start this worker again "
                             "to resume the study from what the database kept")

    def _read(self, cur, start: int, again: bool = False) -> list[dict[str, Any]]:
        if again:
            self._check_position(cur)
        count, last = self._position
        pending, self._pending = self._pending, None
        if pending is not None and pending[0] == start == count:
            rows = pending[1]
        elif start == count:
            rows = cur.execute(_READ_AFTER, (last,)).fetchall()
        else:
            # Asked from another place (a replay started afresh): count rows to it, once.
            rows = cur.execute(_READ_FROM, (max(start - 1, 0),)).fetchall()
            if start > 0:
                if not rows:
                    return []
                self._position = (start, rows[0][0])
                rows = rows[1:]
            else:
                self._position = (0, 0)
        if rows:
            self._position = (start + len(rows), rows[-1][0])
        return [json.loads(log) for _, log in rows]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        texts = [json.dumps(log, separators=(",", ":")) for log in logs]
        durable = any(log.get("op_code") not in _UNSYNCED_OPS for log in logs)

        def append(cur, again):
            count, last = self._position
            if again:
                self._check_position(cur)
                # The connection dropped during the append: it may have committed first.
                rows = cur.execute(_READ_AFTER, (last,)).fetchall()
                if _holds(rows, texts):
                    self._pending = (count, rows)
                    return
            self._pending = (count, cur.execute(_APPEND, (texts, last, durable)).fetchall())

        self._db.run(append)

    def record_heartbeat(self, trial_id: int) -> None:
        self._db.run(lambda cur, again: cur.execute(_BEAT, (trial_id,)))

    def stale(self, trial_ids: list[int], grace: float) -> list[int]:
        """Those of ``trial_ids`` whose last heartbeat is older than ``grace`` seconds by the
        database's clock (a trial that never beat is not among them)."""
        rows = self._db.run(lambda cur, again: cur.execute(
            _STALE, (trial_ids, float(grace))).fetchall())
        return sorted(row[0] for row in rows)

    @contextlib.contextmanager
    def advisory_lock(self, key: int):
        """Hold PostgreSQL's session advisory lock ``key``: one holder among every process on
        every machine (and, through the connection's lock, among this process's threads)."""
        with self._locks.lock:
            # Reconnecting is safe only while this connection holds no lock (it would drop it).
            self._locks.run(lambda cur, again: cur.execute("SELECT pg_advisory_lock(%s)",
                                                           (key,)),
                            reconnect=self._held == 0)
            self._held += 1
            try:
                yield
            finally:
                self._held -= 1
                try:
                    self._locks.run(lambda cur, again: cur.execute(
                        "SELECT pg_advisory_unlock(%s)", (key,)), reconnect=False)
                except StudyError:
                    pass  # the connection dropped, and the lock went with its session

    def close(self) -> None:
        self._db.close()
        self._locks.close()


def _holds(rows: list, texts: list[str]) -> bool:
    """Whether ``texts`` were appended among ``rows`` (after a dropped connection)."""
    logs = [log for _, log in rows]
    n = len(texts)
    return any(logs[i:i + n] == texts for i in range(len(logs) - n + 1))


class PostgresJournalStorage(JournalStorage, BaseHeartbeat):
    """An Optuna storage: the journal in PostgreSQL, with heartbeats for autoreg's workers.

    ``heartbeat_interval``, ``grace_period`` and ``heartbeat_stale_trial_callback`` mean what
    they mean for Optuna's ``RDBStorage``.
    """

    def __init__(self, url: str, *, heartbeat_interval: int | None = None,
                 grace_period: int | None = None, heartbeat_stale_trial_callback=None):
        self.url = url
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.heartbeat_stale_trial_callback = heartbeat_stale_trial_callback
        self._last_beat = (None, 0.0)  # (trial id, time.monotonic()) of the last heartbeat
        super().__init__(PostgresJournalBackend(url))

    def record_heartbeat(self, trial_id: int) -> None:
        now = time.monotonic()
        last_trial, last_time = self._last_beat
        if last_trial == trial_id and now - last_time < (self.heartbeat_interval or 0) / 4:
            return  # beat a moment ago (autoreg beats as it claims, then its thread at once)
        try:
            self._backend.record_heartbeat(trial_id)
            self._last_beat = (trial_id, now)
        except StudyError as exc:
            # The heartbeat thread goes on beating: the next beat may get through.
            warnings.warn(f"autoreg: heartbeat of trial {trial_id} not recorded: {exc}",
                          RuntimeWarning, stacklevel=2)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        assert self.heartbeat_interval is not None
        grace = self.grace_period or 2 * self.heartbeat_interval  # as RDBStorage
        running = [t._trial_id for t in self.get_all_trials(study_id, deepcopy=False,
                                                            states=(TrialState.RUNNING,))]
        return self._backend.stale(running, grace) if running else []

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self):
        return self.heartbeat_stale_trial_callback

    def get_failed_trial_callback(self):  # the name before Optuna 4.9
        return self.heartbeat_stale_trial_callback

    def advisory_lock(self, key: int):
        """A context manager holding the database's advisory lock ``key``."""
        return self._backend.advisory_lock(key)
