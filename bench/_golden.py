"""Golden hashes of everything a user sees, to prove a refactor changes no byte of it.

    PYTHONPATH=TREE python -m bench._golden --out FILE.json [--quick]     (run with cwd = TREE)
    python -m bench._golden --compare BASE.json NEW.json                 (exit 1 if any key differs)

Hashes (sha256 per key) every scenario's run summary, its steps (all of them, or ~400 sampled for a long run),
stepping pages and step-panel fragments at sampled steps, D console results, /trace pages, fragments and exports,
and the `trapscope` command's dtrace/run/pagewalk/export outputs. Host timings are blanked (VOLATILE).

It runs with PYTHONHASHSEED=0 (re-executing itself if need be): /trace/diff's table of changes orders rows with
equal deltas by iterating a set of stacks (sim.trace.flame.self_changes), which differs between processes otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

VOLATILE = [(re.compile(rb"evaluated in [0-9]+ ms"), b"evaluated in N ms")]
LECTURE_DD = "dd if=/dev/zero of=/dev/null bs=10m count=1"
ALL_VIEWS = "narrative,timeline,cpu,source,walk,vm,latency"
PANEL = {"hx-request": "true", "hx-target": "#step-panel"}
HTMX = {"hx-request": "true"}
HASH_SEED = {"PYTHONHASHSEED": "0"}
EXTRA_SCRIPTS = {  # beyond the examples: every kind of probe, with the arguments a typed payload carries
    "syscall": 'syscall:::entry { self->t = timestamp; printf("%s %d %x\\n", probefunc, tid, arg0); }\n'
    "syscall:::return { @r[probefunc, errno, arg0] = count(); @ns[probefunc] = sum(timestamp - self->t); }\n",
    "vm_fault": "fbt::vm_fault:entry { @s[stack()] = count(); }\nfbt::vm_fault:return { @rv[arg1] = count(); }\n",
    "zfod": "vminfo:::zfod { @z[execname, probefunc] = count(); }\nvminfo::: { @all[probename] = count(); }\n",
    "create": 'proc:::create { printf("%d %s %d %d\\n", pid, execname, arg0, arg1); }\n'
    "proc::: { @p[probename, probefunc, pid] = count(); }\n",
}
CLI_COMMANDS = ["getpid 3", "dd if=/dev/zero of=/dev/null bs=1m count=1", "fork", "eintr"]
PAGEWALK_VAS = ["0x400000", "0x401000", "0x7fffffffe000", "0xdead"]


class Golden:
    def __init__(self, quick: bool) -> None:
        from starlette.testclient import TestClient

        from app.main import create_app

        self.quick = quick
        self.hashes: dict[str, str] = {}
        self.statuses: Counter[str] = Counter()  # per kind of key: a sanity check that pages answer 200
        self.client = TestClient(create_app(max_runs=4), follow_redirects=False)

    def put(self, key: str, data: bytes | str) -> None:
        data = data.encode() if isinstance(data, str) else data
        for pattern, replacement in VOLATILE:
            data = pattern.sub(replacement, data)
        assert key not in self.hashes, key
        self.hashes[key] = hashlib.sha256(data).hexdigest()

    def get(self, key: str, path: str, params: dict | None = None, headers: dict | None = None) -> bytes:
        url = f"{path}?{urlencode(params)}" if params else path
        r = self.client.get(url, headers=headers)
        self.statuses[f"{key.split('/')[0]} {r.status_code}"] += 1
        kept = ["content-type", "content-disposition", "location", "hx-push-url", "hx-retarget", "hx-reswap"]
        head = [f"{r.status_code}"] + [f"{h}: {r.headers[h]}" for h in kept if h in r.headers]
        self.put(key, "\n".join(head).encode() + b"\n\n" + r.content)
        return r.content

    # --- the web app ----------------------------------------------------------------------------------------

    def scenario(self, scenario) -> None:
        from app.main import web_record
        from app.trace_examples import examples_for, program_of
        from sim.trace import lecture_scripts as lecture

        slug, command, profile = scenario.slug, scenario.command_line(), scenario.profile
        summary = json.loads(self.get(f"summary/{slug}", "/api/runs", {"command": command, "profile": profile}))
        last = summary["last_step"]
        for n in self.steps(web_record(scenario.spec()).events, last):
            self.get(f"step/{slug}/{n}", f"/api/runs/{slug}/steps/{n}")
        pages = 8 if self.quick else 25
        for n in sorted({last * i // (pages - 1) for i in range(pages)}):
            params = {"step": n, "views": ALL_VIEWS}
            self.get(f"page/{slug}/{n}", f"/scenarios/{slug}", params)
            self.get(f"panel/{slug}/{n}", f"/scenarios/{slug}", params, PANEL)
        examples = examples_for(program_of(command))
        scripts = {f"example-{e.slug}": e.script for e in examples}
        lecture_verbatim = [lecture.LECTURE_SYSCALL_TIMES, lecture.LECTURE_TRAPS, lecture.LECTURE_PROFILE]
        scripts |= {f"lecture-{i}": s for i, s in enumerate(lecture_verbatim) if s not in scripts.values()}
        if self.quick:
            scripts = {k: v for k, v in scripts.items() if k.startswith(("example-syscall-times", "example-profile"))}
        for name, script in scripts.items():
            self.get(f"console/{slug}/{name}", f"/scenarios/{slug}/console", {"script": script}, HTMX)
        self.trace(slug, command, profile, {**scripts, **({} if self.quick else EXTRA_SCRIPTS)})

    def steps(self, events, last: int) -> list[int]:
        """Every step of a short run; else the first 100, the last 50, every k-th (~250), and the first three of
        each event kind and name (--quick: every step of a run under 200 steps, else 20, 10, ~60 and one)."""
        first, final, every, each = (20, 10, 60, 1) if self.quick else (100, 50, 250, 3)
        if last < (200 if self.quick else 5000):
            return list(range(last + 1))
        chosen = set(range(first)) | set(range(last - final + 1, last + 1)) | set(range(0, last, last // every))
        seen: Counter[tuple[str, str]] = Counter()
        for i, event in enumerate(events):
            pair = (event.kind, event.name)
            if seen[pair] < each:
                seen[pair] += 1
                chosen.add(i)
        return sorted(chosen)

    def trace(self, slug: str, command: str, profile: str, scripts: dict[str, str]) -> None:
        base = {"command": command} | ({"profile": profile} if profile != "lecture" else {})
        self.get(f"trace/{slug}", "/trace", base)
        baseline = "MALLOC_CONF=junk:false " + LECTURE_DD if command.startswith(("dd", "MALLOC")) else "getpid 3"
        self.get(f"trace-diff/{slug}", "/trace/diff", base | {"baseline": baseline})
        self.flame(f"{slug}/run", base)
        for name, script in scripts.items():
            query = base | {"script": script}
            key = f"{slug}/{name}"
            self.get(f"trace/{key}", "/trace", query)
            self.get(f"trace-results/{key}", "/trace", query, HTMX)
            if not self.quick:
                self.get(f"trace-quiet/{key}", "/trace", query | {"quiet": "1"}, HTMX)
            flame = self.get(f"trace-flame/{key}", "/trace/flame", query).decode()
            for aggregation in sorted(set(re.findall(r"flame=%40(\w+)", flame))):
                self.flame(f"{key}/@{aggregation}", query | {"flame": f"@{aggregation}"})

    def flame(self, key: str, query: dict) -> None:
        if "flame" in query:
            self.get(f"trace-flame/{key}", "/trace/flame", query)
        folded = ""
        for fmt in ("folded", "speedscope", "chrome"):
            body = self.get(f"trace-export/{key}/{fmt}", "/trace/export", query | {"format": fmt}).decode()
            folded = body if fmt == "folded" else folded
        lines = sorted((ln.rsplit(" ", 1) for ln in folded.splitlines() if " " in ln), key=lambda p: -int(p[1]))
        stacks = {";".join(s.split(";")[:d]) for s, _ in lines[:3] for d in (1, 2, 99)}
        for stack in sorted(stacks)[: 3 if self.quick else 9]:
            self.get(f"trace-frame/{key}/{stack}", "/trace/frame", query | {"stack": stack})

    # --- the command line -----------------------------------------------------------------------------------

    def cli(self, key: str, *argv: str) -> None:
        from app.cli import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(list(argv))
        self.put(f"cli/{key}", f"{status}\n--stdout--\n{out.getvalue()}--stderr--\n{err.getvalue()}")

    def commands(self) -> None:
        from app.trace_examples import examples_for, program_of
        from sim.scenarios.registry import SCENARIOS
        from sim.trace import lecture_scripts as lecture

        for i, script in enumerate([lecture.LECTURE_SYSCALL_TIMES, lecture.LECTURE_TRAPS, lecture.LECTURE_PROFILE]):
            self.cli(f"dtrace/lecture-{i}", "dtrace", "-n", script, "-c", LECTURE_DD)
            self.cli(f"dtrace/lecture-{i}/q", "dtrace", "-q", "-n", script, "-c", LECTURE_DD)
        for scenario in SCENARIOS.values():
            command = scenario.command_line()
            examples = examples_for(program_of(command))
            for example in examples[:2] if self.quick else examples:
                argv = ["dtrace", "--profile", scenario.profile, "-n", example.script, "-c", command]
                self.cli(f"dtrace/{scenario.slug}/{example.slug}", *argv)
        for command in CLI_COMMANDS:
            self.cli(f"run/{command}", "run", "--json", "-c", command)
            self.cli(f"run-text/{command}", "run", "-c", command)
            for va in PAGEWALK_VAS:
                self.cli(f"pagewalk/{command}/{va}", "pagewalk", "--va", va, "-c", command)
                self.cli(f"pagewalk-json/{command}/{va}", "pagewalk", "--json", "--va", va, "-c", command)
            for fmt in ("folded", "speedscope", "chrome"):
                self.cli(f"export/{command}/{fmt}", "export", "--format", fmt, "-o", "-", "-c", command)
                profile = ["-n", lecture.LECTURE_PROFILE.replace('"dd"', f'"{program_of(command)}"')]
                self.cli(
                    f"export-profile/{command}/{fmt}", "export", "--format", fmt, "-o", "-", *profile, "-c", command
                )

    def run(self) -> dict[str, str]:
        from sim.scenarios.registry import SCENARIOS

        self.get("api/scenarios", "/api/scenarios")
        self.get("landing", "/")
        for scenario in SCENARIOS.values():
            started = time.perf_counter()
            self.scenario(scenario)
            print(f"  {scenario.slug}: {len(self.hashes)} keys, {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        self.commands()
        print(f"  commands: {len(self.hashes)} keys, {time.perf_counter() - started:.1f} s", flush=True)
        print("  statuses:", ", ".join(f"{k}: {n}" for k, n in sorted(self.statuses.items())))
        return dict(sorted(self.hashes.items()))


def compare(base_path: str, new_path: str) -> int:
    base, new = json.loads(Path(base_path).read_text()), json.loads(Path(new_path).read_text())
    differ = sorted(k for k in base.keys() | new.keys() if base.get(k) != new.get(k))
    for key in differ:
        print(f"differs: {key}" + ("" if key in base and key in new else " (only in one)"))
    print(f"{len(differ)} of {len(base.keys() | new.keys())} keys differ" if differ else f"all {len(base)} keys equal")
    return 1 if differ else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._golden", description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the hashes here")
    parser.add_argument("--quick", action="store_true", help="fewer steps, pages and scripts (~1 minute)")
    parser.add_argument("--compare", nargs=2, metavar=("BASE", "NEW"), help="compare two hash files")
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    if not args.out:
        parser.error("give --out FILE or --compare BASE NEW")
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(sys.executable, [sys.executable, "-m", "bench._golden", *sys.argv[1:]], os.environ | HASH_SEED)
    import app
    import sim

    print(f"sim: {sim.__file__}\napp: {app.__file__}\nbench: {__file__}", flush=True)
    print(f"quick: {args.quick}, PYTHONHASHSEED={os.environ['PYTHONHASHSEED']}", flush=True)
    started = time.perf_counter()
    hashes = Golden(args.quick).run()
    Path(args.out).write_text(json.dumps(hashes, indent=0, sort_keys=True) + "\n")
    print(f"{len(hashes)} keys in {time.perf_counter() - started:.1f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
