"""How `trapscope serve` runs uvicorn: trapscope's own access log in place of uvicorn's, and a graceful shutdown.

uvicorn's access log writes each whole request line, so a 60 KB URL makes a 60 KB log line, and a lecturer's key
in a query string would be kept in the log. trapscope's (app/observe.py) writes one short JSON line a request, on
stdout; uvicorn's other messages (startup, errors) stay on stderr.

On SIGTERM uvicorn stops accepting, /readyz answers 503, the rooms' event streams end (their followers' browsers
reconnect, to another worker or host if there is one), and requests in flight get TRAPSCOPE_GRACEFUL_SHUTDOWN
seconds (GRACEFUL_SHUTDOWN_S by default) to finish before they are cut off.
"""

from __future__ import annotations

import copy
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from uvicorn.config import LOGGING_CONFIG

GRACEFUL_SHUTDOWN_S = 20  # a web run records in a few seconds at most; a deployment's stop timeout should exceed it


def graceful_shutdown_s() -> int:
    raw = os.environ.get("TRAPSCOPE_GRACEFUL_SHUTDOWN", "").strip()
    return int(raw) if re.fullmatch(r"[0-9]{1,5}", raw) else GRACEFUL_SHUTDOWN_S


def log_config() -> dict[str, Any]:
    """uvicorn's logging, with the "trapscope" loggers added: the access log as bare JSON lines on stdout."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["json_line"] = {"format": "%(message)s"}
    config["handlers"]["trapscope_access"] = {
        "formatter": "json_line",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
    }
    config["loggers"]["trapscope"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    config["loggers"]["trapscope.access"] = {"handlers": ["trapscope_access"], "level": "INFO", "propagate": False}
    return config


def prepare_metrics_dir(workers: int) -> Path | None:
    """Several workers write their metrics to files in PROMETHEUS_MULTIPROC_DIR (app/metrics.py): made here when
    unset, emptied of a previous server's files when set (they would be counted again). Set in the environment,
    so every worker started after this sees it before it imports prometheus_client."""
    named = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not named and workers <= 1:
        return None
    directory = Path(named) if named else Path(tempfile.mkdtemp(prefix="trapscope-metrics-"))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return directory


def uvicorn_options(workers: int = 1) -> dict[str, Any]:
    """The keyword arguments `trapscope serve` adds to uvicorn.run (for `workers` processes)."""
    prepare_metrics_dir(workers)
    return {"access_log": False, "log_config": log_config(), "timeout_graceful_shutdown": graceful_shutdown_s()}
