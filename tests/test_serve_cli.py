"""`trapscope serve --workers N`: N uvicorn worker processes, refused without Redis when N > 1 (app/cli.py)."""

from __future__ import annotations

import pytest
import uvicorn

from app.cli import build_parser, main


@pytest.fixture
def started(monkeypatch) -> list[tuple[tuple, dict]]:
    calls: list[tuple[tuple, dict]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    monkeypatch.delenv("TRAPSCOPE_REDIS_URL", raising=False)
    return calls


def test_serve_runs_one_worker_by_default(started):
    assert build_parser().parse_args(["serve"]).workers == 1
    assert main(["serve", "--port", "8123"]) == 0
    ((args, kwargs),) = started
    assert args == ("app.main:create_app",) and kwargs["factory"] is True  # an import string: workers re-import it
    assert kwargs["workers"] == 1 and kwargs["port"] == 8123


def test_several_workers_share_rooms_through_redis(started, monkeypatch):
    monkeypatch.setenv("TRAPSCOPE_REDIS_URL", "redis://127.0.0.1:6379/0")
    assert main(["serve", "--workers", "3"]) == 0
    assert started[0][1]["workers"] == 3


def test_several_workers_without_redis_are_refused_before_anything_starts(started, capsys):
    assert main(["serve", "--workers", "2"]) == 2
    assert started == []
    assert "--workers 2 needs TRAPSCOPE_REDIS_URL" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "65", "two", "²", "-1", "9" * 500])
def test_a_bad_number_of_workers_is_a_usage_error_that_quotes_a_short_prefix(started, capsys, value):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["serve", "--workers", value])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "a number of processes from 1 to 64" in error and len(error) < 400
