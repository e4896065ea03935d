"""``facestyle checkins``: print or export the check-in log.

    facestyle checkins                       today's check-ins
    facestyle checkins --since 2024-05-01    from that local date on
    facestyle checkins --since 7d --csv      the last 7 days, as CSV on stdout
    facestyle checkins --day yesterday --csv out.csv

DATE is ``today``, ``yesterday``, ``YYYY-MM-DD`` (local midnight), an ISO date-time
(``2024-05-01T08:30``), or ``Nd`` / ``Nh`` (N days / hours ago).
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

from desktop.errors import FacestyleError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("checkins", help="print or export the check-in log",
                       description="Print the check-in log (today's by default), or export it "
                       "as CSV. DATE: today, yesterday, YYYY-MM-DD, an ISO date-time, or "
                       "Nd / Nh (N days / hours ago).")
    p.add_argument("--since", metavar="DATE", help="from DATE (inclusive)")
    p.add_argument("--until", metavar="DATE", help="up to DATE (exclusive)")
    p.add_argument("--day", metavar="DATE", help="one local calendar day")
    p.add_argument("--all", action="store_true", help="the whole log")
    p.add_argument("--csv", nargs="?", const="-", metavar="FILE",
                   help="write CSV to FILE (or stdout when no FILE is given)")
    from desktop.commands.gallery import add_database_option

    add_database_option(p)
    p.set_defaults(func=run)


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """A naive local datetime from the DATE forms above; FacestyleError if unreadable."""
    now = now or datetime.now()
    t = text.strip().lower()
    today = datetime.combine(now.date(), datetime.min.time())
    if t == "today":
        return today
    if t == "yesterday":
        return today - timedelta(days=1)
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([dh])", t)
    if m:
        amount = float(m[1])
        return now - (timedelta(days=amount) if m[2] == "d" else timedelta(hours=amount))
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
            return datetime.combine(date.fromisoformat(t), datetime.min.time())
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        parsed = None
    if parsed is None:
        raise FacestyleError(f"Cannot read the date '{text}'.",
                             "Use today, yesterday, YYYY-MM-DD, 2024-05-01T08:30, 7d or 12h.")
    return parsed.astimezone().replace(tzinfo=None) if parsed.tzinfo else parsed


def run(args: argparse.Namespace) -> int:
    from desktop.commands.gallery import open_db

    if args.day and (args.since or args.until or args.all):
        raise FacestyleError("--day cannot be combined with --since, --until or --all.")
    if args.day:
        start = datetime.combine(parse_when(args.day).date(), datetime.min.time())
        end: datetime | None = start + timedelta(days=1)
        label = f"on {start:%Y-%m-%d}"
    elif args.since or args.until or args.all:
        start = parse_when(args.since) if args.since else None
        end = parse_when(args.until) if args.until else None
        parts = ([f"from {start:%Y-%m-%d %H:%M}"] if start else []) + \
                ([f"until {end:%Y-%m-%d %H:%M}"] if end else [])
        label = " ".join(parts) or "in the whole log"
    else:
        start = parse_when("today")
        end = None
        label = "today"

    gallery = open_db(args.db, create=False)
    if gallery is None:
        rows = []
    else:
        with gallery:
            rows = gallery.checkins_between(start, end)

    if args.csv is not None:
        from desktop.store.export import write_checkins_csv

        if args.csv == "-":
            write_checkins_csv(rows, sys.stdout)
        else:
            n = write_checkins_csv(rows, Path(args.csv))
            print(f"wrote {n} check-in(s) {label} to {args.csv}", file=sys.stderr)
        return 0

    if not rows:
        print(f"No check-ins {label}.")
        return 0
    width = max(4, *(len(c.name) for c in rows))
    print(f"{'time':<19}  {'name'.ljust(width)}  {'d':>6}  camera")
    for c in rows:
        gone = "" if c.person_id is not None else "  (removed)"
        print(f"{c.when:%Y-%m-%d %H:%M:%S}  {c.name.ljust(width)}  {c.d:>6.3f}  "
              f"{c.camera or '-'}{gone}")
    print(f"\n{len(rows)} check-in(s) {label}.")
    return 0
