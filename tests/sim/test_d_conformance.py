"""A few of DTrace's own test suite's cases from each of its directories, judged by the suite runner's own pass
rule (../shared/conformance/dtrace/run.py: judge); `make conformance` runs all of them.

Each case runs as the runner runs it, `dtrace -s NAME -c CMD` from the case's directory, but in this process
(the runner starts a process a case), so that the sample stays quick.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import pytest

from sim.cli import run_command
from sim.trace import dtrace

RUNNER = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "dtrace" / "run.py"

# A sample of every directory the suite has: tst.* cases that print (compared with their .out byte for byte),
# err.* cases that must be refused in libdtrace's words, and cases of each D feature trapscope runs.
SAMPLE = (
    "aggs/tst.avg.d", "aggs/tst.keysort.d", "aggs/tst.llquantbasic.d", "aggs/err.D_LLQUANT_MAGTOOBIG.d",
    "aggs/tst.normalize.d", "aggs/err.D_NORMALIZE_PROTO.bad.d", "arithmetic/err.D_DIV_ZERO.modby0.d",
    "arrays/tst.basic1.d", "assocs/err.tupoflow.d", "begin/tst.begin.d", "builtinvar/tst.execname.d",
    "clauses/tst.predlast.d", "end/tst.end.d", "funcs/tst.toupper.d", "funcs/err.D_PROTO_LEN.chilltoomany.d",
    "grammar/err.D_EMPTY.empty.d", "llquantize/tst.basic.d", "llquantize/err.D_LLQUANT_FACTOREVEN.nodivide.d",
    "multiaggs/tst.zero.d", "multiaggs/err.D_PRINTA_AGGKEY.d", "pragma/err.D_PRAGMA_INVAL.d",
    "predicates/tst.basics.d", "printa/tst.dynwidth.d", "printf/err.D_PRINTF_DYN_PROTO.noprec.d",
    "speculation/tst.SpeculationDiscard.d", "speculation/err.D_COMM_DREC.CommitAftDataRec.d",
    "speculation/err.D_PRAGMA_OPTSET.NegSpecSize.d", "strtoll/tst.strtoll.d", "sugar/tst.if_nested.d",
    "trace/tst.qstring.d",
)  # fmt: skip


@pytest.fixture(scope="module")
def runner():
    if not RUNNER.is_file():
        pytest.skip("../shared/conformance is not beside the project")
    spec = importlib.util.spec_from_file_location("dtrace_conformance", RUNNER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while they are made
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("case", SAMPLE)
def test_the_suites_case_passes(case, runner, capsys, monkeypatch):
    path = runner.SUITE / case
    if not path.is_file():
        pytest.skip(f"{case} is not in this copy of the suite")
    text = path.read_text(errors="replace")
    kind = "err" if path.name.startswith("err.") else "tst"
    tag = path.name.split(".")[1] if kind == "err" and path.name.split(".")[1].startswith("D_") else ""
    result = runner.Result(case, "A", "", kind, tag, runner.command_for(text))
    monkeypatch.chdir(path.parent)
    parser = argparse.ArgumentParser(prog="trapscope")
    dtrace.add_parser(parser.add_subparsers(dest="command_name", required=True))
    result.rc = run_command(parser.parse_args(["dtrace", "-s", path.name, "-c", result.command]))
    result.stdout, result.stderr = capsys.readouterr()
    runner.judge(result, text, runner.tag_patterns())
    assert result.outcome == "pass", f"{result.outcome}: {result.why} {result.detail}\n{result.diff}"
