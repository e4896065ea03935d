"""``facestyle encoders list|activate NAME|rollback|rule RULE``: encoder versions."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encoders", help="list, activate or roll back encoder versions",
                       description="Encoder versions: the built-in dlib-resnet-v1 and "
                       "fine-tuned ones. Activating re-embeds the gallery.")
    from desktop.commands.gallery import add_database_option

    add_database_option(p)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (for the guard)")
    acts = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = acts.add_parser("list", help="the versions, the active one marked with *")
    ls.add_argument("--json", action="store_true")
    act = acts.add_parser("activate", help="make a version active (guarded; re-embeds)")
    act.add_argument("name")
    act.add_argument("--tau", type=float, help="threshold on d (default: the gallery's)")
    acts.add_parser("rollback", help="return to the previously active version (re-embeds)")
    rule = acts.add_parser("rule", help="the decision rule: threshold (d <= tau) or verifier")
    rule.add_argument("rule", nargs="?", choices=("threshold", "verifier"))
    dele = acts.add_parser("delete", help="delete a version that is not active")
    dele.add_argument("name")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from desktop.commands.model_common import (
        activate_and_report,
        gallery_or_none,
        reembed_with_bar,
        tau_setting,
    )
    from desktop.face.encoder_versions import EncoderRegistry

    registry = EncoderRegistry()
    if args.action == "list":
        active = registry.state().active
        versions = registry.list()
        if args.json:
            print(json.dumps([{"name": v.name, "model_id": v.model_id, "active": v.name == active,
                               "builtin": v.builtin, "base": v.base, "created": v.created,
                               "metrics": v.metrics} for v in versions], indent=2))
            return 0
        for v in versions:
            print(f"{'*' if v.name == active else ' '} {v.describe()}")
        previous = registry.previous()
        print(f"rule: {registry.rule()}"
              + (f"; rollback returns to {previous.name}" if previous else ""))
        return 0
    if args.action == "activate":
        with gallery_or_none(args.db) as gallery:
            return activate_and_report(registry, args.name, gallery,
                                       tau_setting(args.tau, gallery), args.device)
    if args.action == "rollback":
        with gallery_or_none(args.db) as gallery:
            version = registry.rollback()
            print(f"active encoder: {version.name} ({version.model_id})")
            reembed_with_bar(registry, gallery)
        return 0
    if args.action == "rule":
        if args.rule:
            registry.set_rule(args.rule)
        print(f"decision rule: {registry.rule()}")
        return 0
    if args.action == "delete":
        registry.delete(args.name)
        print(f"deleted {args.name}", file=sys.stderr)
        return 0
    return 2  # pragma: no cover - argparse requires an action
