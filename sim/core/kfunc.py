"""Marks a modelled kernel function: entering and leaving it are recorded as frame events.

Those frame events are what the call-stack view, DTrace's fbt provider and the flame graphs are built from.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TypeVar

from sim.core.log import Event, EventBudgetExceeded
from sim.core.pcpu import curmachine

F = TypeVar("F", bound=Callable)


# The wrapper, made for each function with the function's own parameters (PARAMS) and call (ARGS), so that a call
# costs a plain call rather than packing *args and **kwargs; its own names start with _kf_, so no parameter shadows
# them. Hot: one frame pair per modelled call, so Machine.enter/exit and EventLog.emit are inlined (the same events
# emit makes: the pending deltas, the budget, and only a count once recording is off). `log.probe_hook` is None
# unless a DTrace program enabled fbt or profile probes: it is called where fbt's entry and return probes sit (the
# function's first instruction and its `ret`), inside the frame, so what a probe costs is billed to the function.
# An entry's data is None unless a D program reads the function's fbt arguments (log.entry_facts). An exit's data is
# the result when it is an int (or None), else its facts (result_facts, off the fast path): a live
# object never enters the log.
_TRACED = """
def traced(PARAMS):
    _kf_log = _kf_curmachine().log
    _kf_depth = _kf_log.depth = _kf_log.depth + 1
    if _kf_log.recording:
        _kf_pending = _kf_log._pending
        _kf_in = None if _kf_log.entry_facts is None else _kf_log.entry_facts(_kf_name, NAMES)
        if _kf_pending:
            _kf_deltas = _kf_tuple(_kf_pending)
            _kf_log.events.append(_kf_Event(_kf_log.now, "enter", _kf_name, _kf_in, _kf_deltas, _kf_depth))
            _kf_pending.clear()
        else:
            _kf_log.events.append(_kf_Event(_kf_log.now, "enter", _kf_name, _kf_in, (), _kf_depth))
        _kf_log.recording -= 1
    else:
        _kf_log.unrecorded += 1
        if _kf_log.unrecorded + _kf_log.record_budget > _kf_log.event_budget:
            raise _kf_Budget(_kf_log.event_budget)
    if _kf_log.probe_hook is not None:
        _kf_log.probe_hook(_kf_name, "entry")
    _kf_rv = _kf_fn(ARGS)
    if _kf_log.probe_hook is not None:
        _kf_log.probe_hook(_kf_name, "return")
    if _kf_log.recording:
        _kf_pending = _kf_log._pending
        _kf_data = _kf_rv if _kf_rv is None or _kf_rv.__class__ is int else _kf_facts(_kf_rv, _kf_name)
        if _kf_pending:
            _kf_deltas = _kf_tuple(_kf_pending)
            _kf_log.events.append(_kf_Event(_kf_log.now, "exit", _kf_name, _kf_data, _kf_deltas, _kf_log.depth))
            _kf_pending.clear()
        else:
            _kf_log.events.append(_kf_Event(_kf_log.now, "exit", _kf_name, _kf_data, (), _kf_log.depth))
        _kf_log.recording -= 1
    else:
        _kf_log.unrecorded += 1
        if _kf_log.unrecorded + _kf_log.record_budget > _kf_log.event_budget:
            raise _kf_Budget(_kf_log.event_budget)
    _kf_log.depth -= 1
    return _kf_rv
"""


def result_facts(result: object, function: str) -> object:
    """What an exit event records of a kernel function's result: an int, a bool or None as it is, a tuple element by
    element, a kernel object as its reference payload (its class's `event_data`, sim/core/events.py). Anything else
    is refused, so that a new kind of result cannot put text or a live object in the log."""
    kind = result.__class__
    if kind is tuple:  # vm_map_lookup's, on every fault: the plain elements are kept without a call
        return tuple([item if item is None or item.__class__ is int else result_facts(item, function)
                      for item in result])  # fmt: skip
    if result is None or kind is int or kind is bool:
        return result
    event_data = getattr(kind, "event_data", None)
    if event_data is None:
        raise TypeError(f"{function}() returned a {type(result).__name__}: the event log has no facts for it "
                        "(give the class an event_data method returning a payload of sim/core/events.py)")  # fmt: skip
    return event_data(result)


def _parameters(fn: Callable) -> tuple[str, str] | None:
    """(the wrapper's parameter list, the call's argument list, the arguments as a tuple) for fn's signature; None
    if it takes *args or **kwargs or positional-only parameters (the generic wrapper serves those)."""
    params, args, names = [], [], []
    keyword_only = False
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.POSITIONAL_OR_KEYWORD:
            params.append(p.name)
            args.append(p.name)
        elif p.kind is p.KEYWORD_ONLY:
            if not keyword_only:
                params.append("*")
                keyword_only = True
            params.append(p.name)
            args.append(f"{p.name}={p.name}")
        else:
            return None
        names.append(p.name)
        if p.name.startswith("_kf_"):
            return None  # the wrapper's own names
    return ", ".join(params), ", ".join(args), "(" + "".join(f"{name}, " for name in names) + ")"


def kfunc(fn: F) -> F:
    name = fn.__name__
    namespace = {"_kf_curmachine": curmachine, "_kf_Event": Event, "_kf_Budget": EventBudgetExceeded,
                 "_kf_fn": fn, "_kf_name": name, "_kf_tuple": tuple,
                 "_kf_facts": result_facts}  # fmt: skip
    signature = _parameters(fn)
    params, args, names = signature if signature is not None else ("*args, **kwargs", "*args, **kwargs", "args")
    source = _TRACED.replace("PARAMS", params).replace("ARGS", args).replace("NAMES", names)
    where = f"<@kfunc wrapper of {fn.__module__}.{fn.__qualname__}>"  # what a traceback names this frame
    exec(compile(source, where, "exec"), namespace)  # noqa: S102 - our own template
    traced = namespace["traced"]
    traced.__defaults__ = fn.__defaults__ if signature is not None else None
    traced.__kwdefaults__ = fn.__kwdefaults__ if signature is not None else None
    functools.wraps(fn)(traced)
    traced.__kfunc__ = traced  # see is_kfunc (a wrapper of this wrapper copies the attribute, but is not it)
    return traced  # type: ignore[return-value]


def is_kfunc(value: object) -> bool:
    """Is `value` a modelled kernel function made by @kfunc (one whose calls are frame events)?"""
    return callable(value) and getattr(value, "__kfunc__", None) is value


def gate(hook: str, data: object, is_set: bool) -> bool:
    """Charge one flag test for a normally-off hook; record it as skipped when its flag is clear.

    The skip event's data is a payload when the words of one hook's skip differ from site to site (say which
    case it is), else None: the narrative has the test's words, keyed by ("skip", hook).
    This is the lecture's "making all of this nothing fast": a disabled hook costs only this test.
    """
    machine = curmachine()
    log = machine.log
    now = log.now = log.now + machine.profile.flag_test_ns
    if is_set:
        return is_set
    if log.recording:  # EventLog.emit, inlined: two in three events on the syscall path are frames or gates
        pending = log._pending
        if pending:
            log.events.append(Event(now, "skip", hook, data, tuple(pending), log.depth))
            pending.clear()
        else:
            log.events.append(Event(now, "skip", hook, data, (), log.depth))
        log.recording -= 1
    else:
        log.unrecorded += 1
        if log.unrecorded + log.record_budget > log.event_budget:
            raise EventBudgetExceeded(log.event_budget)
    return is_set
