"""/readyz's check of the recording queue (app/routes_ops.py runs the checks): whether this process takes new runs.

/healthz says the process is alive; /readyz says 503 while its recording queue is full (app/admission.py), so a
load balancer sends new runs to another replica. Steps of runs already cached are still served meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI


def recording_queue_has_room(app: FastAPI) -> Callable[[], tuple[bool, str]]:
    """A readiness check: ok while a new recording would be admitted by the app's run cache's pool."""

    def check() -> tuple[bool, str]:
        load = app.state.runs.pool.load()
        if load.full:
            return False, (
                f"recording queue full: {load.running} recording on {load.threads} threads, "
                f"{load.waiting} waiting of {load.queue}"
            )
        return True, "recording queue has room"

    return check
