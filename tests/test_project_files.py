"""The project's set-up files agree with each other."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_package_lock_pins_what_package_json_asks_for():
    wanted = json.loads((ROOT / "package.json").read_text())["dependencies"]
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert lock["packages"][""]["dependencies"] == wanted
    for name, version in wanted.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version


def test_console_script_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["trapscope"] == "app.cli:main"


def test_bench_discovery_skips_the_runner_itself():
    from bench.run_all import discover

    names = discover()
    assert not {"run_all", "__init__", "__main__"} & set(names)
    assert names == sorted(names)
