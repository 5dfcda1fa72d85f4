"""The IPC lab's page (/lab) and its one-point measurement (/api/lab/point, JSON), which the page's script calls
once a point, in order, drawing each as it comes (static/lab.js)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates

from app import lab
from app.rate_limit import charge
from app.templating import get_templates
from sim.machine.profiles import DEFAULT_PROFILE, PROFILES

router = APIRouter()
Templates = Annotated[Jinja2Templates, Depends(get_templates)]


@router.get("/lab", response_class=HTMLResponse)
async def lab_page(request: Request, templates: Templates) -> Response:
    context = {
        "modes": lab.MODES,
        "sizes": lab.BUFFER_SIZES,
        "profiles": tuple(PROFILES),
        "default_profile": DEFAULT_PROFILE,
        "totalsize": lab.TOTALSIZE,
        "step_budget": lab.LAB_STEP_BUDGET,
    }
    return templates.TemplateResponse(request, "lab.html", context)


# Not in the API's schema: a point is seconds of CPU, not something to fuzz (tests/test_lab.py checks its errors).
@router.get("/api/lab/point", include_in_schema=False)
async def lab_point(request: Request) -> Response:
    point = lab.parse_point(request.query_params)
    charge()  # a new run: the client's rate limit pays for it, or refuses
    measured = await request.app.state.runs.pool.run(lab.measure, point)
    return JSONResponse(measured)
