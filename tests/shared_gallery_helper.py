"""Subprocesses for the shared-gallery process tests (tests/test_shared_gallery.py).

    python shared_gallery_helper.py enrol URL PREFIX N IDENTITY
        enrol PREFIX-0 .. PREFIX-(N-1), two templates each, as a desk's CLI would;
        prints one JSON line: {"enrolled": [...], "errors": [...]}
    python shared_gallery_helper.py checkin URL HOME N STOP_FILE
        a live desk (SharedGallery): records up to N check-ins, one every 20 ms, of the
        people its local copy knows, each with its own key, printing "n" after each;
        after N (or when STOP_FILE exists) waits until the queue is sent; prints JSON
        {"recorded": [uid...], "errors": [...], "waiting": k}
    python shared_gallery_helper.py half URL GO_FILE
        enrols "Half Person" with 5 templates but stops before the 4th (the person row
        and 3 templates are written, not committed) and prints READY; continues once
        GO_FILE exists; prints JSON {"error": message or null}
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path

from store_fakes import FakeEngine, chip_for

from desktop.store import NewTemplate
from desktop.store.errors import StoreError


def enrol(url: str, prefix: str, n: int, identity: int) -> None:
    from desktop.store.postgres import PostgresGallery

    engine = FakeEngine()
    enrolled, errors = [], []
    with PostgresGallery(url, maintenance=False) as gallery:
        for i in range(n):
            chips = [chip_for(identity, 2 * i), chip_for(identity, 2 * i + 1)]
            try:
                gallery.enrol(f"{prefix}-{i}", [NewTemplate(c, engine.expected(c),
                                                            engine.model_id) for c in chips])
                enrolled.append(f"{prefix}-{i}")
            except StoreError as exc:
                errors.append(exc.message)
    print(json.dumps({"enrolled": enrolled, "errors": errors}), flush=True)


def checkin(url: str, home: str, n: int, stop_file: str) -> None:
    os.environ["FACESTYLE_HOME"] = home
    from desktop.store.postgres import SharedGallery

    recorded, errors = [], []
    with SharedGallery(url, maintenance=False) as desk:
        i = 0
        while len(recorded) < n and not Path(stop_file).exists():
            people = desk.embeddings("fake-v1").person_ids
            if len(people) == 0:
                time.sleep(0.02)
                continue
            uid = str(uuid.uuid4())
            try:
                desk.record_checkin(int(people[i % len(people)]), 0.1, camera="helper",
                                    uid=uid)
                recorded.append(uid)
            except StoreError as exc:
                errors.append(exc.message)
            i += 1
            print(len(recorded), flush=True)
            time.sleep(0.02)
        deadline = time.monotonic() + 60
        while desk.sync_status().waiting and time.monotonic() < deadline:
            time.sleep(0.1)
        waiting = desk.sync_status().waiting
    print(json.dumps({"recorded": recorded, "errors": errors, "waiting": waiting}), flush=True)


def half(url: str, go_file: str) -> None:
    from desktop.store.postgres import PostgresGallery

    engine = FakeEngine()
    gallery = PostgresGallery(url, maintenance=False)
    original = PostgresGallery._insert_template
    calls = {"n": 0}

    def insert_then_wait(self, conn, person_id, row, now):
        if calls["n"] == 3:
            print("READY", flush=True)
            while not Path(go_file).exists():
                time.sleep(0.02)
        calls["n"] += 1
        return original(self, conn, person_id, row, now)

    PostgresGallery._insert_template = insert_then_wait
    templates = [NewTemplate(chip_for(4, v), engine.expected(chip_for(4, v)), engine.model_id)
                 for v in range(5)]
    error = None
    try:
        gallery.enrol("Half Person", templates)
    except StoreError as exc:
        error = exc.message
    print(json.dumps({"error": error}), flush=True)


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    if command == "enrol":
        enrol(rest[0], rest[1], int(rest[2]), int(rest[3]))
    elif command == "checkin":
        checkin(rest[0], rest[1], int(rest[2]), rest[3])
    else:
        half(rest[0], rest[1])
