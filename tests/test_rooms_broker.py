"""The in-process broker (app/broker.py): what the Redis broker does, in a dict and asyncio queues."""

from __future__ import annotations

from app.broker import LISTENER_QUEUE, LOST, MemoryBroker
from tests.test_api_runs import run_in_fresh_loop


def test_keys_are_set_once_when_asked_and_expire():
    async def scenario() -> None:
        broker = MemoryBroker()
        assert await broker.set("k", "a", ttl_s=60, only_new=True)
        assert not await broker.set("k", "b", ttl_s=60, only_new=True)
        assert await broker.get("k") == "a"
        await broker.set("gone", "x", ttl_s=0)
        assert await broker.get("gone") is None
        await broker.hset("h", "student", "yes", ttl_s=60)
        await broker.hset("h", "student", "no", ttl_s=60)  # one value per field: an answer replaced
        assert await broker.hgetall("h") == {"student": "no"} and await broker.hlen("h") == 1
        assert await broker.hget("h", "student") == "no" and await broker.hget("h", "nobody") is None
        await broker.zadd("z", "a", 1.0, ttl_s=60)
        await broker.zadd("z", "b", 5.0, ttl_s=60)
        assert await broker.zcount_from("z", 2.0) == 1
        await broker.zdrop_below("z", 2.0)
        await broker.zrem("z", "b")
        assert await broker.zcount_from("z", 0.0) == 0

    run_in_fresh_loop(scenario)


def test_every_listener_hears_a_message_and_a_slow_one_is_told_it_lost_some():
    async def scenario() -> None:
        broker = MemoryBroker()
        async with broker.listen("room") as fast, broker.listen("room") as slow:
            await broker.publish("room", "step 1")
            assert await fast.get() == "step 1"
            for n in range(LISTENER_QUEUE + 5):
                await broker.publish("room", f"step {n}")
                while not fast.empty():
                    fast.get_nowait()
            drained = [slow.get_nowait() for _ in range(slow.qsize())]
            assert LOST in drained  # it must resynchronise rather than show a gap
            assert len(drained) <= LISTENER_QUEUE
        await broker.publish("room", "nobody listens")  # the channel has no listener left: nothing is kept

    run_in_fresh_loop(scenario)
