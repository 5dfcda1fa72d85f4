"""Prometheus metrics, served at /metrics: requests and their latency by route, the run cache, recordings, rooms.

Labels are bounded: a request is labelled by its route's template (/scenarios/{slug}), never by its URL, so a
crawler's million URLs make no new series.

Several worker processes: set PROMETHEUS_MULTIPROC_DIR to an empty directory, the same for every worker, before
they start (prometheus_client reads it when imported). Each worker then writes its values to files there and
/metrics, whichever worker answers, reports the sum over all of them (the gauges of workers that have exited are
dropped). Without it, /metrics reports only the worker that answers the scrape.

Other modules count through the small functions below, never by reaching for the metric objects.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # the route label of a request no route took (a 404 for a mistyped URL)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter("trapscope_http_requests", "Requests answered, by route template", ["method", "route", "status"])
LATENCY = Histogram(
    "trapscope_http_request_duration_seconds",
    "Time to answer a request, by route template (event streams are not timed: they last as long as the follower)",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
RUN_CACHE = Counter(
    "trapscope_run_cache_lookups",
    "Run cache lookups: hit (cached), miss (recorded now), joined (waited for the same run being recorded)",
    ["result"],
)
RECORDINGS_IN_PROGRESS = Gauge(
    "trapscope_recordings_in_progress", "Runs being recorded now", multiprocess_mode="livesum"
)
RECORDINGS_QUEUED = Gauge(
    "trapscope_recordings_queued", "Runs waiting for their turn to be recorded", multiprocess_mode="livesum"
)
RECORDINGS_REFUSED = Counter("trapscope_recordings_refused", "Recordings refused because the queue was full")
ROOMS_OPEN = Gauge(
    "trapscope_rooms_open", "Live rooms (counted when /metrics is scraped)", multiprocess_mode="livemostrecent"
)
FOLLOWERS = Gauge(
    "trapscope_room_followers_connected", "Followers' event streams open now", multiprocess_mode="livesum"
)


def observe_request(method: str, route: str, status: int, seconds: float | None) -> None:
    """One answered request; `seconds` is None for an event stream, whose length is not a latency."""
    method = method if method in METHODS else "other"
    REQUESTS.labels(method, route, str(status)).inc()
    if seconds is not None:
        LATENCY.labels(method, route).observe(seconds)


def run_cache_lookup(result: str) -> None:
    RUN_CACHE.labels(result).inc()


@contextlib.contextmanager
def recording() -> Iterator[None]:
    """Around the recording of a run."""
    with RECORDINGS_IN_PROGRESS.track_inprogress():
        yield


def recordings_waiting(count: int) -> None:
    """How many recordings wait for their turn now (admission control, app/admission.py)."""
    RECORDINGS_QUEUED.set(count)


def recording_refused() -> None:
    RECORDINGS_REFUSED.inc()


@contextlib.asynccontextmanager
async def follower_connected() -> AsyncIterator[None]:
    """Around a follower's event stream."""
    with FOLLOWERS.track_inprogress():
        yield


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition(rooms_open: int) -> tuple[bytes, str]:
    """The metrics in Prometheus's text format, and its content type."""
    ROOMS_OPEN.set(rooms_open)
    if multiprocess_dir() is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def worker_exited() -> None:
    """A worker stopping: its live gauges (recordings, followers) leave the sums."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(os.getpid())
