"""trapscope benchmarks: run them all with ``make bench`` (``python -m bench``). See bench/README.md."""

import os

# A benchmark is one client making many new runs: the public app's per-client rate limit (app/rate_limit.py) is
# off for it, and for the servers it starts, unless TRAPSCOPE_RATE_LIMIT is set.
os.environ.setdefault("TRAPSCOPE_RATE_LIMIT", "off")
