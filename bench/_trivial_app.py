"""The yardstick of bench/lecture_load.py: a FastAPI app whose one endpoint returns a small fixed HTML fragment.

What its server answers per second under the same client is the most any FastAPI app on this machine could answer
(`uvicorn bench._trivial_app:app`); trapscope's cached step panels are measured as a share of it.
"""

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

FRAGMENT = '<section id="step-panel" data-step="1"><p>A small fixed fragment.</p></section>'

app = FastAPI()


@app.get("/fragment", response_class=HTMLResponse)
async def fragment() -> str:
    return FRAGMENT
