"""Subprocess for the kill-during-enrolment test (run by tests/test_store_integrity.py).

Usage: python store_kill_helper.py DB N_TEMPLATES PAUSE_BEFORE

Enrols "Half Person" with N_TEMPLATES templates, but just before writing template number
PAUSE_BEFORE (0-based; the person row is already written by then) it prints READY and
sleeps, so the parent can SIGKILL it mid-transaction. PAUSE_BEFORE = -1 runs to the end.
"""

from __future__ import annotations

import sys
import time

from store_fakes import FakeEngine, chip_for

from desktop.store import Gallery, NewTemplate


def main() -> None:
    db, n, pause_before = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    engine = FakeEngine()
    gallery = Gallery(db, maintenance=False)
    original = Gallery._insert_template
    calls = {"n": 0}

    def insert_then_maybe_pause(self, conn, person_id, row, now):
        if calls["n"] == pause_before:
            print("READY", flush=True)
            time.sleep(120)
        calls["n"] += 1
        return original(self, conn, person_id, row, now)

    Gallery._insert_template = insert_then_maybe_pause
    templates = [NewTemplate(chip_for(4, v), engine.expected(chip_for(4, v)), engine.model_id)
                 for v in range(n)]
    gallery.enrol("Half Person", templates)
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
