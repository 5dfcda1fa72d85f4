"""/readyz: whether this process takes new work now, for a load balancer or an orchestrator to route by.

/healthz says the process is alive; /readyz says 503 while its recording queue is full (app/admission.py), so
new runs go to another replica. Its steps of runs already cached are still served meanwhile.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.admission import Load

router = APIRouter(include_in_schema=False)


def recording_load(request: Request) -> Load:
    """The recording pool's queue now: running, waiting and its bounds."""
    return request.app.state.runs.pool.load()


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    load = recording_load(request)
    body = {
        "status": "busy" if load.full else "ready",
        "recordings": {"running": load.running, "waiting": load.waiting, "threads": load.threads, "queue": load.queue},
    }
    return JSONResponse(body, status_code=503 if load.full else 200, headers={"Cache-Control": "no-store"})
