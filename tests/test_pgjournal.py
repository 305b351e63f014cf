"""``journal+postgresql://``: Optuna's journal in a PostgreSQL table. A study reads back whole,
workers appending at once leave one order that every reader replays the same, heartbeats tell
a dead worker on another machine, a dropped connection is opened again, and the CLI runs one
study from several processes with one of them killed."""

from __future__ import annotations

import collections
import itertools
import json
import math
import os
import pickle
import re
import subprocess
import sys
import time

import optuna
import psycopg
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled
from optuna.trial import TrialState
from postgres import postgres_url  # noqa: F401 (a fixture)
from test_workers_postgres import end_of_workers, kill_one_mid_trial, start_workers

from autoreg import pgjournal, workers
from autoreg.errors import StudyError, UsageError
from autoreg.storage import open_storage, redact

_SERIAL = itertools.count()
# Optuna notes that heartbeats are meant for Study.optimize; autoreg runs them itself.
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage")


def _server(url: str) -> str:
    """A libpq URL of the server's maintenance database, from the fixture's SQLAlchemy URL."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url).rsplit("/", 1)[0] + "/postgres"


@pytest.fixture
def journal_url(postgres_url, request):  # noqa: F811
    """``journal+postgresql://`` on a database of this test's own."""
    name = re.sub(r"\W+", "_", request.node.name.lower())[:40] + f"_{next(_SERIAL)}"
    with psycopg.connect(_server(postgres_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return "journal+" + postgres_url.rsplit("/", 1)[0] + "/" + name


def _snapshot(study) -> list:
    """Everything a trial holds, in a form where NaN equals NaN."""
    return [json.dumps([t.number, t.state.name, t.params, sorted(t.distributions), t.values,
                        t.user_attrs, t.system_attrs, str(t.datetime_start),
                        str(t.datetime_complete)], sort_keys=True, default=str)
            for t in study.trials]


def test_a_study_reads_back_whole_from_a_fresh_storage(journal_url):
    storage = open_storage(journal_url)
    assert isinstance(storage, pgjournal.PostgresJournalStorage)
    assert workers.server_dialect(storage) == "postgresql"
    study = optuna.create_study(storage=storage, study_name="whole",
                                directions=["minimize", "maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.set_user_attr("autoreg.settings", {"seed": 0, "techniques": ["l1", "l2"]})
    for i in range(6):
        trial = study.ask()
        x = trial.suggest_float("x", 1e-6, 1.0, log=True)
        k = trial.suggest_int("k", 1, 9)
        c = trial.suggest_categorical("c", ["l1", "l2", None])
        # JSON that a jsonb column would refuse (NaN, infinity) and text beyond ASCII.
        trial.set_user_attr("fit", {"std": math.nan, "bound": -math.inf, "note": "ré€"})
        if i == 4:
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, [x, k / 10, math.inf if c is None else 0.5])
    study.enqueue_trial({"x": 0.5, "k": 3, "c": "l2"})
    with pytest.raises(optuna.exceptions.DuplicatedStudyError):
        optuna.create_study(storage=storage, study_name="whole")
    before = _snapshot(study)
    assert len(before) == 7

    again = optuna.load_study(study_name="whole", storage=open_storage(journal_url))
    assert _snapshot(again) == before
    assert again.user_attrs == study.user_attrs
    assert again.directions == study.directions
    states = collections.Counter(t.state.name for t in again.trials)
    assert states == {"COMPLETE": 5, "FAIL": 1, "WAITING": 1}
    assert math.isnan(again.trials[0].user_attrs["fit"]["std"])
    # A pickled storage (as Optuna's own parallel tools send one) replays the same journal.
    thawed = pickle.loads(pickle.dumps(storage))
    assert _snapshot(optuna.load_study(study_name="whole", storage=thawed)) == before
    # Read from any entry number, not only onward from the last read.
    backend = pgjournal.PostgresJournalBackend(journal_url)
    logs = backend.read_logs(0)
    assert backend.read_logs(5) == logs[5:] and backend.read_logs(len(logs)) == []
    assert backend.read_logs(len(logs) + 3) == [] and backend.read_logs(1) == logs[1:]


_APPENDER = """
import json, sys
import optuna
from autoreg import pgjournal
from autoreg.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.ERROR)
url, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
seen = []
read = pgjournal.PostgresJournalBackend.read_logs

def recording(self, start):
    logs = read(self, start)
    seen.extend(logs)
    return logs

pgjournal.PostgresJournalBackend.read_logs = recording
study = optuna.load_study(study_name="race", storage=open_storage(url))
for _ in range(n):
    trial = study.ask()
    trial.set_user_attr("writer", out)
    study.tell(trial, trial.suggest_float("x", 0, 1))
with open(out, "w") as fh:
    json.dump(seen, fh)
"""


def test_appends_from_many_processes_replay_in_one_order(journal_url, tmp_path):
    """Four processes append at once. Every reader, the writers themselves and one that
    followed along, read exactly the journal a fresh reader reads afterwards: a row committed
    after a later one would be skipped by the readers that saw the later one first."""
    follower = open_storage(journal_url)  # opened on the empty journal: it reads it all
    study = optuna.create_study(storage=open_storage(journal_url), study_name="race")
    followed = []
    read = follower._backend.read_logs

    def recording(start):
        logs = read(start)
        followed.extend(logs)
        return logs

    follower._backend.read_logs = recording
    outs = [tmp_path / f"seen{i}.json" for i in range(4)]
    procs = [subprocess.Popen([sys.executable, "-c", _APPENDER, journal_url, str(out), "30"],
                              stderr=subprocess.PIPE, text=True) for out in outs]
    while any(p.poll() is None for p in procs):
        follower.get_all_trials(study._study_id, deepcopy=False)
    for proc in procs:
        assert proc.returncode == 0, proc.stderr.read()[-2000:]
    follower.get_all_trials(study._study_id, deepcopy=False)

    fresh = pgjournal.PostgresJournalBackend(journal_url).read_logs(0)
    assert followed == fresh
    for out in outs:
        seen = json.loads(out.read_text())
        assert seen == fresh[:len(seen)]
    trials = optuna.load_study(study_name="race", storage=open_storage(journal_url)).trials
    assert sorted(t.number for t in trials) == list(range(120))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert collections.Counter(t.user_attrs["writer"] for t in trials) == \
        {str(out): 30 for out in outs}


def test_a_silent_heartbeat_fails_and_requeues_the_trial(journal_url, monkeypatch):
    """Trials of workers on other machines (no process id to check): one whose heartbeats
    stopped is failed after the grace period (three 1 s heartbeats) and queued again with its
    parameters; one still beating, and one that never beat, are left running."""
    monkeypatch.setenv("AUTOREG_HEARTBEAT", "1")
    monkeypatch.setattr(workers, "_STALE_CHECKED", {})  # a study id of another test's database
    storage = open_storage(journal_url)
    assert is_heartbeat_enabled(storage) and storage.get_heartbeat_interval() == 1
    assert storage.get_heartbeat_stale_trial_callback() is workers.retry
    study = optuna.create_study(storage=storage, study_name="beats")
    space = {"x": FloatDistribution(0, 1), "k": IntDistribution(1, 5),
             "c": CategoricalDistribution(["a", "b"])}
    silent, beating, never = (study.ask(space) for _ in range(3))
    for n, trial in enumerate((silent, beating, never)):
        trial.set_user_attr(workers.PROCESS_ATTR, f"another-machine:{4242 + n}:1")
    storage.record_heartbeat(silent._trial_id)
    with get_heartbeat_thread(beating._trial_id, storage):
        assert workers.reap(study) == [] and workers.budget_used(study) == 3
        time.sleep(3.6)  # past the 3 s grace period by the database's clock
        assert storage._get_stale_trial_ids(study._study_id) == [silent._trial_id]
        workers._STALE_CHECKED.clear()  # looked at once per interval: look now
        assert workers.reap(study) == [silent.number]
    states = [t.state for t in study.trials]
    assert states == [TrialState.FAIL, TrialState.RUNNING, TrialState.RUNNING,
                      TrialState.WAITING]
    assert study.trials[3].params == study.trials[0].params
    assert study.trials[3].system_attrs["failed_trial"] == silent.number
    assert workers.budget_used(study) == 2  # the slot is free for the retry
    # The next claim runs the retry, with the same parameters.
    study.tell(beating, 0.0)
    study.tell(never, 0.0)
    workers.run_trials(study, lambda t: t.suggest_float("x", 0, 1), 3,
                       lock=workers.claim_lock(storage, journal_url, "beats"))
    assert study.trials[3].state == TrialState.COMPLETE
    assert study.trials[3].value == study.trials[0].params["x"]


def _terminate(journal_url) -> int:
    """Drop every other connection to the test's database, as a server restart does."""
    with psycopg.connect(pgjournal.conninfo(journal_url), autocommit=True) as conn:
        pids = [row[0] for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()")]
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
    return len(pids)


def test_a_dropped_connection_is_opened_again(journal_url, monkeypatch):
    """A server restart drops the journal's and the lock's connections: both are opened
    again, nothing is written twice, and only a database that stays away is an error."""
    storage = open_storage(journal_url)
    study = optuna.create_study(storage=storage, study_name="drop")
    lock = workers.claim_lock(storage, journal_url, "drop")
    with lock():
        study.tell(study.ask(), 1.0)
    assert _terminate(journal_url) == 2  # the journal's connection and the lock's
    with lock():
        trial = study.ask()
    trial.set_user_attr("after", "drop")
    study.tell(trial, 2.0)
    assert [t.value for t in study.trials] == [1.0, 2.0]
    fresh = pgjournal.PostgresJournalBackend(journal_url).read_logs(0)
    assert len(fresh) == study._storage._replay_result.log_number_read

    # Dropped at the worst moment, after the append committed and before its answer came:
    # the entry is found in the journal and not written twice.
    class DropsAfterAppend:
        def __init__(self, cursor):
            self.cursor = cursor

        def execute(self, query, params=None):
            self.cursor.execute(query, params)
            if query == pgjournal._APPEND:
                self.cursor.connection.close()
                raise psycopg.OperationalError("server closed the connection unexpectedly")
            return self.cursor

    session = storage._backend._db
    session.close()
    session._conn = session.connect()
    session._cur = DropsAfterAppend(session._conn.cursor())
    study.set_user_attr("once", True)
    logs = pgjournal.PostgresJournalBackend(journal_url).read_logs(0)
    assert sum(1 for log in logs if log.get("user_attr") == {"once": True}) == 1
    assert len(logs) == study._storage._replay_result.log_number_read

    # A server that is away for a moment (restarting) is waited for.
    refusals = iter([psycopg.OperationalError("connection refused")] * 2)
    connect = session.connect

    def restarting():
        error = next(refusals, None)
        if error is not None:
            raise error
        return connect()

    monkeypatch.setattr(session, "connect", restarting)
    _terminate(journal_url)
    study.set_user_attr("back", True)
    assert next(refusals, None) is None and study.user_attrs["back"]

    # A database that stays gone is one clear error.
    monkeypatch.setattr(pgjournal, "RECONNECT_SECONDS", 1.0)
    with psycopg.connect(_server(journal_url[len("journal+"):]), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{journal_url.rsplit("/", 1)[1]}" WITH (FORCE)')
    with pytest.raises(StudyError, match="journal database .* failed: .*does not exist"):
        study.tell(study.ask(), 3.0)


def test_only_state_changes_wait_for_the_disk(journal_url):
    """Entries that change a running trial commit without waiting for the disk; an entry that
    changes a state waits (and so makes every entry before it durable), as with the file."""
    open_storage(journal_url)  # makes the table and the append function
    settings = {}
    with psycopg.connect(pgjournal.conninfo(journal_url), autocommit=True) as conn:
        conn.execute("SET synchronous_commit TO on")  # as on a production server
        for op, name in ((8, "attribute"), (6, "state")):
            with conn.transaction(force_rollback=True):  # look, and append nothing
                conn.execute(pgjournal._APPEND,
                             ([json.dumps({"op_code": op})], 0, op not in {4, 5, 7, 8, 9}))
                settings[name] = conn.execute("SHOW synchronous_commit").fetchone()[0]
    assert settings == {"attribute": "off", "state": "on"}


def test_a_worker_whose_entries_the_server_lost_stops_clearly(journal_url):
    """A server crash can lose entries committed without waiting for the disk. A worker that
    read them must not go on from a history the database no longer has."""
    storage = open_storage(journal_url)
    study = optuna.create_study(storage=storage, study_name="lost")
    study.tell(study.ask(), 1.0)
    last = storage._backend._position[1]
    with psycopg.connect(pgjournal.conninfo(journal_url), autocommit=True) as conn:
        conn.execute(f"DELETE FROM {pgjournal.TABLE} WHERE id = %s", (last,))  # lost
    assert _terminate(journal_url) >= 1  # the crash drops every connection
    with pytest.raises(StudyError, match="lost its latest entries"):
        study.ask()


def _with_password(url: str) -> str:
    """``url`` with a password (the test server trusts every local connection)."""
    return url.replace("postgres@", "postgres:s3cr%40t@", 1)


def _unreachable(url: str) -> str:
    return re.sub(r"@127\.0\.0\.1:\d+", "@127.0.0.1:1", url)


@pytest.mark.parametrize("make_url, needle", [
    (_unreachable, "Connection refused"),
    (lambda url: url.rsplit("/", 1)[0] + "/no_such_db", "does not exist"),
    (lambda url: url.replace("journal+postgresql+psycopg", "journal+postgresql+psycopg2"),
     "unsupported storage URL"),
])
def test_a_bad_url_is_one_clear_error_without_the_password(postgres_url, make_url,  # noqa: F811
                                                          needle):
    url = make_url(_with_password("journal+" + postgres_url))
    with pytest.raises(UsageError, match=needle) as info:
        open_storage(url)
    assert "s3cr" not in str(info.value) and "postgres:***@" in str(info.value)


def test_the_cli_reports_an_unreachable_server_in_one_line(postgres_url, tmp_path):  # noqa: F811
    url = _unreachable(_with_password("journal+" + postgres_url))
    cli = subprocess.run([sys.executable, "-m", "autoreg.cli", "search", "diabetes", "--trials",
                          "1", "--no-mlflow", "--storage", url], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "AUTOREG_HOME": str(tmp_path / ".autoreg")})
    assert cli.returncode == 2
    assert "Traceback" not in cli.stderr and "s3cr" not in cli.stderr + cli.stdout
    assert cli.stderr.startswith("autoreg: error: cannot open storage journal+postgresql")
    assert "Connection refused" in cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1, cli.stderr


def test_three_workers_one_killed_keep_the_budget_and_log_once(journal_url, tmp_path):
    """Three `autoreg search` processes on one journal+postgresql study, as on three machines;
    one is SIGKILLed mid-trial. The others fail its trial, run it again, and together complete
    the budget exactly; one MLflow parent run records the study; the same command again finds
    nothing left to do."""
    import mlflow

    url = _with_password(journal_url)  # which the MLflow record must not show
    procs, cmd, env, tracking = start_workers(tmp_path, url, 3, 16, 0.1)
    # A trial of the slow technique (0.1 s per fit, six fits), just begun: killed mid-trial.
    killed, pid = kill_one_mid_trial(open_storage(journal_url), procs, after=3, fresh=0.2,
                                     timeout=120, poll=0.05)
    end_of_workers(procs, pid, timeout=180)
    study = optuna.load_study(study_name="machines", storage=open_storage(journal_url))
    states = collections.Counter(t.state.name for t in study.trials)
    assert states == {"COMPLETE": 16, "FAIL": 1}, states  # the budget, plus the killed attempt
    assert len({t.number for t in study.trials}) == 17
    retry = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed]
    assert [t.state for t in retry] == [TrialState.COMPLETE]
    drawn = study.trials[killed].params
    assert {k: retry[0].params[k] for k in drawn} == drawn

    client = mlflow.MlflowClient(tracking_uri=tracking)
    exp = client.get_experiment_by_name("autoreg")
    parents = client.search_runs([exp.experiment_id], "tags.`autoreg.role` = 'search'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert float(parents[0].data.metrics["n_trials"]) == 16
    assert parents[0].data.tags["autoreg.storage"] == redact(url)

    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=180)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "(16 trials, 0 failed, 1 attempt(s) run again" in again.stdout
    assert len(optuna.load_study(study_name="machines",
                                 storage=open_storage(journal_url)).trials) == 17
    assert len(client.search_runs([exp.experiment_id],
                                  "tags.`autoreg.role` = 'search'")) == 1


def test_workers_opening_a_new_database_at_once_all_get_in(journal_url):
    """Eight workers open a new database at the same moment: they race to create the journal's
    tables and function, and every one of them gets in."""
    import threading

    start = threading.Barrier(8)
    errors = []

    def open_it():
        start.wait()
        try:
            pgjournal.PostgresJournalBackend(journal_url).close()
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_a_dropped_storage_closes_its_connections(journal_url):
    """Optuna's storages have no close(): a journal storage a program drops closes its
    database connections itself, not through the driver's ResourceWarning at collection."""
    import gc
    import warnings

    store = open_storage(journal_url)
    optuna.create_study(storage=store, study_name="dropped")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del store
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
