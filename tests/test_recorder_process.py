"""Recording in a child process (app/recorder_process.py): the run that comes back is the run recorded here, with
its views, every shared reference kept; refusals come back as themselves; the app records there by default."""

from __future__ import annotations

import pytest

from app.errors import BadParameter
from app.main import web_record
from app.recorder_process import RecorderProcess, pack, recorder_process_from_env, unpack
from app.runs import CachedRun, RunCache
from app.stepper import STEPPER_RUN, PrepareStepper, stepper_run
from sim.run import RunSpec
from sim.user.shell import CommandLineError
from tests.aio import run as run_coroutine

DD = RunSpec("dd if=/dev/zero of=/dev/null bs=64k count=2")


@pytest.fixture(scope="module")
def here() -> CachedRun:
    cached = CachedRun(web_record(DD))
    stepper_run(cached)
    return cached


def test_unpacked_run_is_the_packed_one_with_every_reference_shared(here: CachedRun) -> None:
    there = unpack(pack(here))
    assert there.run.events == here.run.events
    assert there.replay.events is there.run.events and there.replay.run is there.run  # one copy, not three
    stepper = there.derived_views()[STEPPER_RUN]
    assert stepper.latency.threads is there.run.threads  # a view's parts still point where they pointed
    there_measured = unpack(pack(here))
    there_measured.measure()
    assert there.nbytes == pytest.approx(there_measured.nbytes, rel=0.01)  # an estimate: refcounts steer it
    assert there.nbytes > here.nbytes  # what the server holds, which is more than the run as recorded
    for step in (0, here.last_step // 2, here.last_step):
        assert there.state_at(step) == here.state_at(step)
    assert stepper.functions == here.derived_views()[STEPPER_RUN].functions
    assert stepper.intervals == here.derived_views()[STEPPER_RUN].intervals


def test_a_run_recorded_in_the_child_is_cached_with_its_views() -> None:
    process = RecorderProcess()
    cache = RunCache(recorder=web_record, elsewhere=process)
    try:
        cached = run_coroutine(cache.get(DD, prepare=PrepareStepper("dd-system-time")))
        assert cached.built(STEPPER_RUN) is not None  # derived in the child, not on the first step here
        assert cached.built("stops:dd-system-time") is not None  # the scenario's stops too
        assert cached.run.run_id == DD.run_id and cached.run.exit_status == 0
        assert run_coroutine(cache.get(DD)) is cached

        with pytest.raises(BadParameter, match="the web limit is 32 MiB") as too_big:
            run_coroutine(cache.get(RunSpec("dd if=/dev/zero of=/dev/null bs=1m count=64")))
        assert too_big.value.parameter == "command"
        with pytest.raises(CommandLineError, match="no such program"):
            run_coroutine(cache.get(RunSpec("nosuch")))
    finally:
        cache.close()


def test_the_recorder_is_chosen_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAPSCOPE_RECORDER", "thread")
    assert recorder_process_from_env() is None
    monkeypatch.setenv("TRAPSCOPE_RECORDER", "elsewhere")
    with pytest.raises(ValueError, match="TRAPSCOPE_RECORDER must be process or thread"):
        recorder_process_from_env()
    monkeypatch.delenv("TRAPSCOPE_RECORDER")
    process = recorder_process_from_env()
    assert isinstance(process, RecorderProcess)
    process.shutdown()
