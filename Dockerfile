# trapscope in a container:
#   docker build -t trapscope .
#   docker run --rm -p 8000:8000 trapscope        # then open http://127.0.0.1:8000
# Several replicas behind nginx, with Redis: deploy/compose.yaml (README, "Deployment").
# Everything the browser needs (plotly.js from the plotly package, htmx from node_modules) is in the image:
# the app works offline.

# ---------------------------------------------------------------- browser libraries pinned in package-lock.json
FROM python:3.11-slim-bookworm AS npm-deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --omit=dev  # axe-core, a devDependency, is for the browser tests only

# ---------------------------------------------------------------- the app
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN useradd --no-log-init --create-home --uid 10001 --user-group trapscope

WORKDIR /app

# The dependencies first, in a layer of their own that survives edits to the sources.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# Then the project, installed as the README does (editable: templates/, static/ and node_modules/ are
# found beside app/ in /app, not in site-packages).
COPY . .
COPY --from=npm-deps /src/node_modules ./node_modules
RUN pip install -e .

USER trapscope
EXPOSE 8000
# Worker processes (`trapscope serve --workers N`). One by default: more need TRAPSCOPE_REDIS_URL, where their
# live rooms meet (deploy/compose.yaml sets both); `serve` refuses several workers without it.
ENV TRAPSCOPE_WORKERS=1
# No curl in the slim image: ask /healthz with Python.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
CMD ["sh", "-c", "exec trapscope serve --host 0.0.0.0 --port 8000 --workers \"$TRAPSCOPE_WORKERS\""]
