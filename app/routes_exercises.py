"""Exercises: /exercises lists the kinds, /exercises/KIND?seed=N shows one variant, and the same URL with the
student's `answer` checks it (app/exercises.py generates each from its seed and reads the answer from a run)."""

from __future__ import annotations

import re
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.errors import BadParameter
from app.exercises import GENERATORS, MAX_SEED, check
from app.runs import RunCache, get_run_cache
from app.templating import get_templates
from sim.run import Run, RunSpec

router = APIRouter(include_in_schema=False)

Runs = Annotated[RunCache, Depends(get_run_cache)]
Templates = Annotated[Jinja2Templates, Depends(get_templates)]
MAX_ANSWERS, MAX_ANSWER_LENGTH = 20, 100


@router.get("/exercises", response_class=HTMLResponse)
async def exercises_index(request: Request, templates: Templates) -> HTMLResponse:
    kinds = [(kind, title) for kind, (title, _) in GENERATORS.items()]
    context = {"kinds": kinds, "random_seed": secrets.randbelow(MAX_SEED)}
    response = templates.TemplateResponse(request, "exercises.html", context)
    response.headers["Cache-Control"] = "no-store"  # a new random variant each time
    return response


def _seed(raw: str | None) -> int:
    valid = f"a whole number from 0 to {MAX_SEED}"
    if raw is None:
        return 1
    if not re.fullmatch(r"[0-9]{1,10}", raw.strip()) or int(raw) > MAX_SEED:
        raise BadParameter("seed", f"query parameter 'seed' must be {valid}, not {raw[:20]!r}", valid)
    return int(raw)


@router.get("/exercises/{kind}", response_class=HTMLResponse)
async def exercise_page(request: Request, kind: str, runs: Runs, templates: Templates) -> HTMLResponse:
    if kind not in GENERATORS:
        raise HTTPException(404, f"no exercise {kind[:40]!r} (exercises: {', '.join(GENERATORS)})")
    seed = _seed(request.query_params.get("seed"))
    answers = request.query_params.getlist("answer")
    if len(answers) > MAX_ANSWERS or any(len(a) > MAX_ANSWER_LENGTH for a in answers):
        limit = f"at most {MAX_ANSWERS} answers of {MAX_ANSWER_LENGTH} characters"
        raise BadParameter("answer", f"query parameter 'answer' is too long: {limit}", limit)

    async def get_run(spec: RunSpec) -> Run:
        return (await runs.get(spec)).run

    title, generate = GENERATORS[kind]
    exercise = await generate(seed, get_run)
    answered = "answer" in request.query_params
    context = {
        "title": title,
        "exercise": exercise,
        "answered": answered,
        "submitted": answers,
        "verdict": check(exercise, answers) if answered else None,
        "max_seed": MAX_SEED,
    }
    return templates.TemplateResponse(request, "exercise.html", context)
