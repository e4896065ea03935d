"""``facestyle gallery``: enrol, list and remove people; backups, restore, re-embedding.

The same code paths as the app (:mod:`desktop.store`), headless::

    facestyle gallery enroll NAME IMAGE... [--db PATH] [--add] [--skip-bad] [--force]
    facestyle gallery list [--db PATH] [--json]
    facestyle gallery remove NAME [--id N] [--delete-history] [--db PATH]
    facestyle gallery backups [--db PATH]
    facestyle gallery restore [BACKUP] [--db PATH]
    facestyle gallery reembed [--db PATH]
    facestyle gallery settings [--tau D] [--margin D] [--cooldown-hours H] [--retention-days N]
                               [--liveness off|passive|challenge]
    facestyle gallery reset-pin [--db PATH]
    facestyle gallery migrate --to postgresql://USER@HOST/DB [--db PATH]   (--from: back)
    facestyle gallery serve [--port N]        a local PostgreSQL to try a shared gallery

``--db`` (alias ``--database``) takes a SQLite file or a ``postgresql://`` URL; without it,
``FACESTYLE_DATABASE``, else the app's file.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from datetime import datetime
from pathlib import Path

from desktop.commands.batch import exit_status_help, finish_batch
from desktop.errors import FacestyleError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gallery", help="enrol, list and remove people in the check-in gallery",
                       description="Manage the check-in gallery (people and face templates).")
    gsub = p.add_subparsers(dest="gallery_command", metavar="ACTION", required=True)

    db_arg = add_database_option

    e = gsub.add_parser("enroll", aliases=["enrol"], help="enrol a person from photos",
                        description="Enrol NAME from one or more photos, each showing only "
                        "that person's face. One template per photo; all saved at once. A "
                        "photo that cannot be used refuses the whole enrolment (exit 2, "
                        "nothing saved) unless --skip-bad is given.",
                        epilog=exit_status_help("images"))
    e.add_argument("name", metavar="NAME")
    e.add_argument("images", metavar="IMAGE", nargs="+", type=Path)
    db_arg(e)
    e.add_argument("--employee-id", metavar="ID", help="optional employee id (unique)")
    e.add_argument("--add", action="store_true",
                   help="add the photos to the existing person called NAME")
    e.add_argument("--skip-bad", action="store_true",
                   help="enrol from the usable photos even if some are refused (the exit "
                   "status is then 1)")
    e.add_argument("--force", action="store_true",
                   help="enrol even if NAME looks like someone enrolled, or the photos differ")
    e.add_argument("--min-face", type=int, default=None, metavar="PX",
                   help="smallest face accepted, in pixels (default 60)")
    e.set_defaults(func=cmd_enroll)

    ls = gsub.add_parser("list", help="list enrolled people")
    db_arg(ls)
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_list)

    rm = gsub.add_parser("remove", help="delete a person and their face templates",
                         description="Delete NAME with all their templates and photos. Their "
                         "check-in history is kept (under their name) unless "
                         "--delete-history is given.")
    rm.add_argument("name", metavar="NAME", nargs="?")
    rm.add_argument("--id", type=int, help="choose the person by id (when names repeat)")
    rm.add_argument("--delete-history", action="store_true",
                    help="also delete their check-ins")
    db_arg(rm)
    rm.set_defaults(func=cmd_remove)

    bk = gsub.add_parser("backups", help="list the gallery's automatic backups")
    db_arg(bk)
    bk.add_argument("--now", action="store_true", help="make a backup now")
    bk.set_defaults(func=cmd_backups)

    rs = gsub.add_parser("restore", help="replace the gallery by a backup",
                         description="Replace the gallery by BACKUP (default: the newest "
                         "readable one). The current file is renamed aside, never deleted.")
    rs.add_argument("backup", metavar="BACKUP", nargs="?", type=Path)
    db_arg(rs)
    rs.set_defaults(func=cmd_restore)

    re_ = gsub.add_parser("reembed", help="re-embed templates made by another encoder",
                          epilog=exit_status_help("templates"))
    db_arg(re_)
    re_.set_defaults(func=cmd_reembed)

    st = gsub.add_parser("settings", help="show or change tau, margin, cooldown, retention",
                         description="Show the check-in settings stored in the gallery, or "
                         "change them. Without options, prints them with an explanation.")
    db_arg(st)
    st.add_argument("--tau", type=float, metavar="D",
                    help="threshold on d for naming a face (default 0.36)")
    st.add_argument("--margin", type=float, metavar="D",
                    help="how much closer than the next person the best match must be")
    st.add_argument("--cooldown-hours", type=float, metavar="H",
                    help="one check-in per person per this many hours")
    st.add_argument("--retention-days", type=float, metavar="N",
                    help="delete check-ins older than this (0 keeps them all)")
    st.add_argument("--liveness", choices=("off", "passive", "challenge"),
                    help="refuse photos and phone screens at check-in: off, passive, or "
                         "challenge (passive, then a blink or head turn when undecided)")
    st.set_defaults(func=cmd_settings)

    mg = gsub.add_parser(
        "migrate", help="copy the gallery to a shared PostgreSQL server, or back to a file",
        description="Copy everything (people, templates and chips, the check-in log, "
        "settings, the manager PIN) between the SQLite file (--db, default the app's) and "
        "a PostgreSQL server, then check that the counts match. The target must be empty; "
        "the source is not changed.")
    way = mg.add_mutually_exclusive_group(required=True)
    way.add_argument("--to", metavar="URL", help="copy the file to this server")
    way.add_argument("--from", dest="source", metavar="URL",
                     help="copy this server's gallery into the file")
    mg.add_argument("--db", type=Path, metavar="PATH",
                    help="the SQLite file (default: the app's, in the user data folder)")
    mg.set_defaults(func=cmd_migrate)

    sv = gsub.add_parser(
        "serve", help="run a local PostgreSQL server to try a shared gallery",
        description="Start a PostgreSQL server (with pgvector) on this computer, listening "
        "on 127.0.0.1 only, and print the URL to give each desk. For trying several desks "
        "on one machine; use a real server for several computers. Needs "
        "pip install 'facestyle[postgres]'. Stops on Ctrl-C.")
    sv.add_argument("--folder", type=Path, metavar="DIR",
                    help="where the server keeps its data (default: in the user data folder)")
    sv.add_argument("--port", type=int, default=54329, help="TCP port (default 54329)")
    sv.set_defaults(func=cmd_serve)

    pin = gsub.add_parser("reset-pin", help="remove the manager PIN (the app asks for a new one)")
    db_arg(pin)
    pin.set_defaults(func=cmd_reset_pin)


# ---------------------------------------------------------------------------- helpers


def add_database_option(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--database`` (alias ``--db``): a SQLite file or a ``postgresql://`` URL."""
    parser.add_argument(
        "--database", "--db", dest="db", metavar="PATH_OR_URL",
        help=help or "the gallery: a SQLite file, or postgresql://USER@HOST/DB for a shared "
        "one (default: $FACESTYLE_DATABASE, else the app's file in the user data folder)")


def open_db(path: str | Path | None, *, create: bool, live: bool = False):
    """Open the gallery for a command (a file or a server), with a CLI hint on a damaged
    file. ``live``: a desk's view of a shared gallery (local copy, offline queue).

    Returns None when ``create`` is False and there is no gallery file yet.
    """
    from desktop.store import Gallery, GalleryOpenError, open_gallery
    from desktop.store.location import is_server_url, resolve

    target = resolve(path)
    if is_server_url(target):
        return open_gallery(str(target), live=live)
    if not create and not target.exists():
        return None
    try:
        return Gallery(target, create=create)
    except GalleryOpenError as exc:
        if exc.backups:
            exc.hint = ((exc.hint or "") + "\nTo restore the newest backup: facestyle gallery "
                        f"restore{'' if path is None else f' --db {path}'}").strip()
        raise


def load_engine():
    """The real face engine (desktop.face.api.FaceEngine), or a clear error."""
    try:
        from desktop.face.api import FaceEngine
    except ImportError as exc:
        raise FacestyleError("The face engine is not available in this build.",
                             "Install the complete facestyle package.") from exc
    return FaceEngine()


def _fmt_time(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def _progress_bar(total: int, label: str):
    from desktop.commands.progress import ProgressBar

    bar = ProgressBar(total, label)
    return bar, (lambda fraction, message="": bar.update(round(fraction * total), message))


# ---------------------------------------------------------------------------- commands


def cmd_enroll(args: argparse.Namespace) -> int:
    from desktop.store.enrol import DEFAULT_MIN_FACE_PX, enrol_from_images

    engine = load_engine()
    with open_db(args.db, create=True) as gallery:
        bar, progress = _progress_bar(len(args.images), "examining")
        try:
            result = enrol_from_images(
                gallery, engine, args.name, args.images, employee_id=args.employee_id,
                add=args.add, skip_bad=args.skip_bad, force=args.force,
                min_face_px=args.min_face if args.min_face is not None else DEFAULT_MIN_FACE_PX,
                progress=progress)
        finally:
            bar.close()
        for line in result.skipped:
            print(f"skipped: {line}", file=sys.stderr)
        for line in result.warnings:
            print(f"warning: {line}", file=sys.stderr)
        verb = "enrolled" if result.created else "added photos to"
        print(f"{verb} {result.person.name} (id {result.person.id}): "
              f"{len(result.template_ids)} template(s) from {len(result.used)} image(s); "
              f"{result.person.n_templates} in total. Encoder: {engine.model_id}.")
    return finish_batch(len(result.skipped), len(args.images), "images",
                        " (skipped by --skip-bad)")


def cmd_list(args: argparse.Namespace) -> int:
    gallery = open_db(args.db, create=False)
    if gallery is None:
        people, models = [], {}
    else:
        with gallery:
            people, models = gallery.people(), gallery.model_counts()
    if args.json:
        print(json.dumps({"people": [
            {"id": p.id, "name": p.name, "employee_id": p.employee_id,
             "templates": p.n_templates, "created": p.created_at, "last_checkin": p.last_checkin}
            for p in people], "templates_per_model": models}, indent=2))
        return 0
    if not people:
        print("No one is enrolled yet. Enrol with: facestyle gallery enroll NAME IMAGE...")
        return 0
    width = max(4, *(len(p.name) for p in people))
    print(f"{'id':>5}  {'name'.ljust(width)}  {'employee':<10} {'templates':>9}  "
          f"{'enrolled':<16}  last check-in")
    for p in people:
        print(f"{p.id:>5}  {p.name.ljust(width)}  {(p.employee_id or '-'):<10} "
              f"{p.n_templates:>9}  {_fmt_time(p.created_at):<16}  {_fmt_time(p.last_checkin)}")
    summary = ", ".join(f"{n} from {m}" for m, n in models.items())
    print(f"\n{len(people)} people; templates: {summary or 'none'}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    if args.name is None and args.id is None:
        raise FacestyleError("Say who to remove: a NAME or --id N.")
    gallery = open_db(args.db, create=False)
    if gallery is None:
        raise FacestyleError("There is no gallery yet, so no one to remove.")
    with gallery:
        person = gallery.person(args.id) if args.id is not None \
            else gallery.person_by_name(args.name)
        result = gallery.delete_person(person.id, keep_history=not args.delete_history)
    history = (f"deleted {result.checkins_deleted} check-in(s)" if args.delete_history
               else f"kept {result.checkins_kept} check-in(s) under the name "
                    f"(--delete-history removes them)")
    print(f"removed {result.name} (id {result.person_id}): {result.templates_deleted} "
          f"template(s) deleted; {history}.")
    return 0


def _file_only(args: argparse.Namespace, what: str) -> Path:
    """The SQLite file of ``args.db``; a clear error for a shared gallery."""
    from desktop.store.location import describe, is_server_url, resolve

    where = resolve(args.db)
    if is_server_url(where):
        raise FacestyleError(
            f"The shared gallery on {describe(where)} has no {what} here: its server's "
            "administrator backs it up (pg_dump).",
            f"To copy it into a file: facestyle gallery migrate --from {describe(where)} "
            "--db COPY.sqlite3 (with the full URL).")
    return Path(where)


def cmd_backups(args: argparse.Namespace) -> int:
    from desktop.store import list_backups

    path = _file_only(args, "backups")
    if args.now:
        gallery = open_db(args.db, create=False)
        if gallery is None:
            raise FacestyleError("There is no gallery yet, so nothing to back up.")
        with gallery:
            info = gallery.backup("manual")
        print(f"backed up to {info.path}")
    found = list_backups(path)
    if not found:
        print(f"No backups of {path} yet.")
    for info in found:
        print(f"{info.describe():<40} {info.path}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from desktop.store import Gallery, restore_backup

    path = _file_only(args, "backups to restore")
    moved = restore_backup(path, args.backup)
    with Gallery(path, maintenance=False) as gallery:
        n = len(gallery.people())
    if moved:
        print(f"the previous file was kept as {moved}")
    print(f"restored {path} from {'the newest backup' if args.backup is None else args.backup}:"
          f" {n} people.")
    return 0


def cmd_reembed(args: argparse.Namespace) -> int:
    from desktop.store.reembed import reembed_gallery

    gallery = open_db(args.db, create=False)
    if gallery is None:
        print("There is no gallery yet; nothing to re-embed.")
        return 0
    engine = load_engine()
    with gallery:
        total = gallery.count_stale(engine.model_id)
        bar, progress = _progress_bar(total, "re-embedding")
        try:
            report = reembed_gallery(gallery, engine, progress=progress)
        finally:
            bar.close()
    print(f"re-embedded {report.done} of {report.total} template(s) with {report.model_id}.")
    for tid, reason in report.failed:
        print(f"  template {tid} failed: {reason}", file=sys.stderr)
    return finish_batch(len(report.failed), report.total, "templates",
                        " (they stay on the old encoder and are not matched)")


_SETTING_LIMITS = {"tau": (0.01, 2.0), "margin": (0.0, 1.0), "cooldown_hours": (0.0, 24 * 365),
                   "retention_days": (0.0, 36500.0)}


def cmd_settings(args: argparse.Namespace) -> int:
    from desktop.face.matching import MARGIN_EXPLANATION, TAU_EXPLANATION
    from desktop.resources import default

    changes = {k: getattr(args, k) for k in _SETTING_LIMITS if getattr(args, k) is not None}
    for key, value in changes.items():
        lo, hi = _SETTING_LIMITS[key]
        if not lo <= value <= hi:
            raise FacestyleError(f"{key.replace('_', '-')} must be between {lo:g} and {hi:g}.")
    if args.liveness is not None:
        changes["liveness"] = args.liveness
    gallery = open_db(args.db, create=bool(changes))
    if gallery is None:  # no gallery yet: the shipped defaults
        values = {key: default("checkin", key) for key in (*_SETTING_LIMITS, "liveness")}
    else:
        with gallery:
            for key, value in changes.items():
                gallery.set_setting(key, value)
            values = gallery.settings()
    for key in _SETTING_LIMITS:
        print(f"{key.replace('_', '-'):<15} {values[key]:g}")
    print(f"{'liveness':<15} {values.get('liveness') or default('checkin', 'liveness')}")
    if not changes:
        for key, text in (("tau", TAU_EXPLANATION), ("margin", MARGIN_EXPLANATION)):
            print("\n" + textwrap.fill(f"{key}: {text}", width=88))
    return 0


def cmd_reset_pin(args: argparse.Namespace) -> int:
    gallery = open_db(args.db, create=False)
    if gallery is None:
        raise FacestyleError("There is no gallery yet.")
    with gallery:
        had = gallery.has_pin()
        gallery.clear_pin()
    print("the manager PIN was removed; the app asks for a new one on next use." if had
          else "no manager PIN was set.")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from desktop.store import Gallery, default_db_path
    from desktop.store.location import describe, is_server_url
    from desktop.store.migrate import copy_gallery
    from desktop.store.postgres.gallery import PostgresGallery

    url = args.to or args.source
    if not is_server_url(url):
        raise FacestyleError(f"{url!r} is not a PostgreSQL URL.",
                             "Use postgresql://USER@HOST:PORT/DBNAME (password in ~/.pgpass "
                             "or PGPASSWORD).")
    path = (args.db or default_db_path()).expanduser()
    if args.to and not path.exists():
        raise FacestyleError(f"There is no gallery at {path} to copy.")
    with PostgresGallery(url, maintenance=False) as server, \
            Gallery(path, maintenance=False) as local:
        source, target = (local, server) if args.to else (server, local)
        bar, progress = _progress_bar(1000, "copying")
        try:
            counts = copy_gallery(source, target, progress=lambda f, m="": progress(f, m))
        finally:
            bar.close()
    where = describe(url) if args.to else str(path)
    print(f"copied {counts.describe()} to {where}; the counts match.")
    if args.to:
        print(f"Point each desk at it: FACESTYLE_DATABASE={url} facestyle")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import signal
    import time

    from desktop.paths import user_dirs
    from desktop.store.postgres.server import LocalServer

    folder = (args.folder or user_dirs().data / "postgres").expanduser()
    server = LocalServer(folder, port=args.port, fsync=True)
    if server.running:
        raise FacestyleError(f"Port {args.port} is already in use.",
                             "Choose another with --port, or use the server already there.")
    def stop_on(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Ctrl-C, and a plain kill, stop the server too (a background job ignores SIGINT)
    signal.signal(signal.SIGTERM, stop_on)
    signal.signal(signal.SIGINT, stop_on)
    server.start()
    print(f"PostgreSQL is running (data in {server.data}).\n"
          f"Give each desk: FACESTYLE_DATABASE={server.url}\nStop it with Ctrl-C.",
          flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        print("stopped.")
    return 0
