"""The lecture outline: every slide of "The Process Model (2)" in order, each with the scenarios that show it
(sim/scenarios/outline.py), and the stops of each, so a lecturer can teach the lecture from top to bottom."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.templating import get_templates
from sim.scenarios.outline import outline

router = APIRouter(include_in_schema=False)


@router.get("/outline", response_class=HTMLResponse)
async def outline_page(request: Request, templates: Annotated[Jinja2Templates, Depends(get_templates)]) -> HTMLResponse:
    return templates.TemplateResponse(request, "outline.html", {"entries": outline()})
