"""D programs for the web: each compiled once, in a worker thread, and kept in a small cache by its text.

Compiling checks every probe description against the probe catalog and builds the program's closures: tens of
milliseconds, and a request for a cached step must never wait behind it on the event loop. A program that does
not compile is kept too, as its error: a student retyping the same mistake costs nothing. A kept program is traced
one session at a time (CompiledScript.session), and each of its results is a copy (sim/trace/dtrace.py).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from sim.trace.d_parser import DtraceError
from sim.trace.dtrace import CompiledScript, compile_script

MAX_COMPILED_PROGRAMS = 64  # each holds its closures (bounded by the script's size), no session's data
# Operations a D program may evaluate over one run on the web (sim/trace/d_interp.py's Clause.cost: a node of
# its clauses' trees per clause run, 40 a stack(), 100 an entry printa() sorts): ~0.15 us each, so about 4 s
# of a worker thread. The lecture's heaviest script, fbt entry and return with a quantize() over dd bs=32m,
# takes ~12 M.
WEB_OPS_BUDGET = 25_000_000


class CompiledPrograms:
    """An LRU of compiled programs (or their compile errors), by program text and script name."""

    def __init__(self, max_entries: int = MAX_COMPILED_PROGRAMS) -> None:
        self.max_entries = max_entries
        self._programs: OrderedDict[tuple[str, str], CompiledScript | DtraceError] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._programs)

    def has(self, script: str, script_name: str) -> bool:
        """Is the program (or its error) kept?"""
        return (script_name, script) in self._programs

    def get(self, script: str, script_name: str) -> CompiledScript:
        """The compiled program; raises its DtraceError. Call it in a worker thread: compiling is CPU work."""
        key = (script_name, script)
        with self._lock:
            found = self._programs.get(key)
            if found is not None:
                self._programs.move_to_end(key)
        if found is None:
            try:
                found = compile_script(script, script_name)
            except DtraceError as error:
                found = error
            with self._lock:
                self._programs[key] = found
                while len(self._programs) > self.max_entries:
                    self._programs.popitem(last=False)
        if isinstance(found, DtraceError):
            raise found.with_traceback(None)
        return found
