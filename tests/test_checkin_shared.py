"""The Check-in tab as one desk of a shared gallery (a real PostgreSQL server): another
desk's enrolment is recognised within seconds, the status bar says connected / offline
with the check-ins waiting, queued check-ins arrive once, and the manager's Settings
field stores the server's address (never a password)."""

from __future__ import annotations

import psycopg
import pytest
from checkin_fakes import CheckinEngine, enrol_fake, walking, write_clip
from test_checkin_manager import open_manager, still_camera

from desktop.store.postgres import PostgresGallery
from desktop.ui.checkin.shared_gallery import configured_gallery

pytest_plugins = ["conftest_checkin", "postgres_server"]


def named(tab, name: str) -> bool:
    return any(f.name == name for f in tab.view.faces)


def server_checkins(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT count(*) FROM checkins").fetchone()[0])


@pytest.mark.slow
def test_a_desk_follows_the_shared_gallery_and_queues_while_offline(
        make_tab, qtbot, pg_server, pg_url, tmp_path):
    clip = write_clip(tmp_path / "ann.avi", walking("ann", 40))
    other_desk = PostgresGallery(pg_url)
    try:
        tab = make_tab(gallery_path=pg_url, source=str(clip), loop_files=True,
                       engine_factory=CheckinEngine)
        qtbot.waitUntil(lambda: tab.gallery is not None and tab.session.engine is not None,
                        timeout=15_000)
        tab._update_status()
        assert tab.status_fields["shared_gallery"] == "Shared gallery: connected"
        # Enrolled at another desk: named and checked in here, without a restart.
        enrol_fake(other_desk, "ann", "Ann Lee")
        qtbot.waitUntil(lambda: named(tab, "Ann Lee"), timeout=10_000)
        qtbot.waitUntil(lambda: server_checkins(pg_url) == 1, timeout=10_000)
        # A cooldown of ~4 s set at the other desk reaches this one.
        other_desk.set_setting("cooldown_hours", 0.001)
        qtbot.waitUntil(lambda: tab.session.cooldown_s == pytest.approx(3.6), timeout=10_000)
        other_desk.close()
        pg_server.stop()
        qtbot.waitUntil(lambda: "offline since" in tab.status_fields.get("shared_gallery", ""),
                        timeout=10_000)
        qtbot.waitUntil(lambda: "waiting" in tab.status_fields["shared_gallery"],
                        timeout=30_000)  # Ann walks in again: queued on this desk
        assert named(tab, "Ann Lee")  # still recognised from the desk's copy
        waiting = tab.gallery.sync_status().waiting
        assert waiting >= 1 and tab.events[-1].recorded
        pg_server.start()
        qtbot.waitUntil(lambda: tab.status_fields["shared_gallery"]
                        == "Shared gallery: connected", timeout=20_000)
        assert server_checkins(pg_url) >= 1 + waiting
        with psycopg.connect(pg_url) as conn:
            dup = conn.execute("SELECT count(*) - count(DISTINCT uid) FROM checkins").fetchone()
        assert dup[0] == 0
    finally:
        if not pg_server.running:
            pg_server.start()
        other_desk.close()


def test_settings_field_stores_the_server_without_a_password(make_tab, qtbot, gallery):
    gallery.set_pin("2468")
    tab = make_tab(source="0", capture_factory=still_camera(walking("bob", 5)))
    qtbot.waitUntil(lambda: tab.gallery is not None, timeout=10_000)
    page = open_manager(tab, qtbot).show_page("settings")
    assert page.database_now.text().startswith("this computer's file")
    page.database_edit.setText("postgresql://desk:secret@db.example/gallery")
    assert page.save() == {} and "password" in page.status.text()
    assert configured_gallery() is None
    page.database_edit.setText("postgresql://desk@db.example/gallery?sslmode=verify-full")
    page.save()
    assert "next start" in page.status.text()
    assert configured_gallery() == "postgresql://desk@db.example/gallery?sslmode=verify-full"
    page.database_edit.setText("")
    page.save()
    assert configured_gallery() is None


def test_a_desk_never_re_embeds_a_shared_gallery_on_its_own(make_tab, qtbot, pg_url):
    """Another desk may have switched encoders on purpose; re-embedding here would switch
    every desk back."""
    with PostgresGallery(pg_url) as other_desk:
        enrol_fake(other_desk, "ann", "Ann Lee", model_id="another-encoder")
    tab = make_tab(gallery_path=pg_url, source="0",
                   capture_factory=still_camera(walking("bob", 5)))
    qtbot.waitUntil(lambda: tab.gallery is not None and tab.session.engine is not None,
                    timeout=15_000)
    qtbot.waitUntil(lambda: "another desk's encoder" in tab.view.notice, timeout=10_000)
    assert tab.gallery.model_counts() == {"another-encoder": 1}  # left as it was
    assert tab.session.engine.model_id != "another-encoder"
