"""`trapscope scenarios [--json]`: every scenario, in the lecture's order (the outline's), with its slide and the
command line it runs, so a lecturer can prepare at the command line what the web app will show."""

from __future__ import annotations

import argparse
import json

from sim.scenarios.outline import outline


def scenario_rows() -> list[dict[str, object]]:
    rows = []
    for entry in outline():
        for scenario in entry.scenarios:
            rows.append(
                {
                    "id": scenario.slug,
                    "title": scenario.title,
                    "slide": entry.slide.title if entry.slide else scenario.slide,
                    "slide_number": entry.slide.number if entry.slide else None,
                    "command": scenario.command_line(),
                    "profile": scenario.profile,
                    "stops": [stop.name for stop in scenario.stops],
                }
            )
    return rows


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    listing = subparsers.add_parser("scenarios", help="list the lecture's scenarios (id, title, slide, command)")
    listing.add_argument("--json", action="store_true", help="print a JSON array of objects instead")
    listing.set_defaults(handler=_list)


def _list(args: argparse.Namespace) -> int:
    rows = scenario_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(str(row["id"])) for row in rows)
    for row in rows:
        where = f"slide {row['slide_number']}" if row["slide_number"] else "no slide"
        print(f"{row['id']:<{width}}  {where:<9}  {row['title']}")
        print(f"{'':<{width}}  {'':<9}  $ {row['command']}")
    return 0
