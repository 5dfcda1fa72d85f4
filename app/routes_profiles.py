"""The machine profiles' pages: each constant a run's costs come from, what it is and where its figure comes from
(read from sim/machine/profiles.py's own comments), and the memory hierarchy copies are charged through."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.templating import get_templates
from sim.machine.profile_sources import constants
from sim.machine.profiles import DEFAULT_PROFILE, PROFILES

router = APIRouter(include_in_schema=False)

Templates = Annotated[Jinja2Templates, Depends(get_templates)]


def shown_value(name: str, value: object) -> str:
    """A constant as a person reads it: nanoseconds with their unit, sizes in KiB/MiB/GiB."""
    if isinstance(value, bool) or not isinstance(value, int):
        return str(value)
    if name.endswith("_ns"):
        return f"{value:,} ns"
    if name.endswith("_bytes"):
        return size(value)
    return f"{value:,}"


def size(value: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if value >= 1 << shift and not value % (1 << shift):
            return f"{value >> shift} {unit}"
    return f"{value:,} bytes"


@router.get("/profiles", response_class=HTMLResponse)
async def profiles_page(request: Request, templates: Templates) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "profiles.html", {"profiles": list(PROFILES.values()), "default": DEFAULT_PROFILE}
    )


@router.get("/profiles/{name}", response_class=HTMLResponse)
async def profile_page(request: Request, name: str, templates: Templates) -> HTMLResponse:
    profile = PROFILES.get(name)
    if profile is None:
        raise HTTPException(404, f"no machine profile {name!r}: the profiles are {', '.join(PROFILES)}")
    rows = [(c, shown_value(c.name, c.value)) for c in constants(profile)]
    return templates.TemplateResponse(
        request,
        "profile.html",
        {"profile": profile, "rows": rows, "size": size, "profiles": list(PROFILES), "default": DEFAULT_PROFILE},
    )
