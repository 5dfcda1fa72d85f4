"""Where live rooms keep their state and send their messages: in this process, or in Redis.

One process (the embedded default) keeps rooms in a dict and fans messages out through asyncio queues: nothing to
install. Several workers or hosts share rooms through Redis (`TRAPSCOPE_REDIS_URL`): keys with an expiry for the
state, pub/sub for the messages. Both are a `Broker`: the few primitives app/rooms.py builds rooms from, so the
room logic exists once and either backend runs it.

A process subscribes to a channel once, however many of its followers listen: each listener gets a bounded local
queue, and a listener too slow to keep up is told it lost messages (`LOST`) rather than holding memory without end.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Protocol

LISTENER_QUEUE = 64  # messages a listener may fall behind before it is told it lost some
LOST = "\x00lost"  # what a listener reads in place of the messages it lost: it must resynchronise
REDIS_CONNECTIONS = 64  # per process: commands beyond these wait their turn
REDIS_WAIT_S = 20  # the longest a command waits for a connection before it fails (Redis is then in trouble)


class Broker(Protocol):
    """Keys with an expiry (strings, hashes, scored sets) and publish/subscribe, as Redis has them."""

    async def get(self, key: str) -> str | None: ...
    async def set(self, key: str, value: str, ttl_s: int, only_new: bool = False) -> bool: ...
    async def delete(self, *keys: str) -> None: ...
    async def touch(self, key: str, ttl_s: int) -> None: ...
    async def hset(self, key: str, field: str, value: str, ttl_s: int) -> None: ...
    async def hget(self, key: str, field: str) -> str | None: ...
    async def hgetall(self, key: str) -> dict[str, str]: ...
    async def hlen(self, key: str) -> int: ...
    async def zadd(self, key: str, member: str, score: float, ttl_s: int) -> None: ...
    async def zrem(self, key: str, member: str) -> None: ...
    async def zcount_from(self, key: str, low: float) -> int: ...
    async def zdrop_below(self, key: str, high: float) -> None: ...
    async def publish(self, channel: str, message: str) -> None: ...
    def listen(self, channel: str) -> contextlib.AbstractAsyncContextManager[asyncio.Queue[str]]: ...
    async def close(self) -> None: ...


class _Fanout:
    """Local listeners by channel: one bounded queue each."""

    def __init__(self) -> None:
        self.listeners: dict[str, set[asyncio.Queue[str]]] = {}

    def deliver(self, channel: str, message: str) -> None:
        for queue in list(self.listeners.get(channel, ())):
            if queue.full():
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(LOST)
            else:
                queue.put_nowait(message)

    def add(self, channel: str) -> tuple[asyncio.Queue[str], bool]:
        """A new listener's queue, and whether it is the channel's first local listener."""
        queue: asyncio.Queue[str] = asyncio.Queue(LISTENER_QUEUE)
        listeners = self.listeners.setdefault(channel, set())
        listeners.add(queue)
        return queue, len(listeners) == 1

    def remove(self, channel: str, queue: asyncio.Queue[str]) -> bool:
        """Forget a listener; whether the channel has no local listener left."""
        listeners = self.listeners.get(channel, set())
        listeners.discard(queue)
        if listeners:
            return False
        self.listeners.pop(channel, None)
        return True


class MemoryBroker:
    """The one-process broker: a dict of keys with expiry times, and local queues."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[object, float]] = {}
        self._fanout = _Fanout()

    def _live(self, key: str) -> object | None:
        found = self._values.get(key)
        if found is None:
            return None
        value, expires = found
        if expires <= time.monotonic():
            del self._values[key]
            return None
        return value

    def _sweep(self) -> None:
        now = time.monotonic()
        for key in [key for key, (_, expires) in self._values.items() if expires <= now]:
            del self._values[key]

    def _store(self, key: str, value: object, ttl_s: int) -> None:
        self._values[key] = (value, time.monotonic() + ttl_s)

    async def get(self, key: str) -> str | None:
        value = self._live(key)
        return value if isinstance(value, str) else None

    async def set(self, key: str, value: str, ttl_s: int, only_new: bool = False) -> bool:
        if only_new:
            self._sweep()  # new keys are rare (a room opens): a good moment to drop the expired ones
            if self._live(key) is not None:
                return False
        self._store(key, value, ttl_s)
        return True

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._values.pop(key, None)

    async def touch(self, key: str, ttl_s: int) -> None:
        value = self._live(key)
        if value is not None:
            self._store(key, value, ttl_s)

    def _mapping(self, key: str) -> dict[str, object]:
        value = self._live(key)
        return value if isinstance(value, dict) else {}

    async def hset(self, key: str, field: str, value: str, ttl_s: int) -> None:
        mapping = self._mapping(key)
        mapping[field] = value
        self._store(key, mapping, ttl_s)

    async def hget(self, key: str, field: str) -> str | None:
        value = self._mapping(key).get(field)
        return None if value is None else str(value)

    async def hgetall(self, key: str) -> dict[str, str]:
        return {field: str(value) for field, value in self._mapping(key).items()}

    async def hlen(self, key: str) -> int:
        return len(self._mapping(key))

    async def zadd(self, key: str, member: str, score: float, ttl_s: int) -> None:
        await self.hset(key, member, str(score), ttl_s)

    async def zrem(self, key: str, member: str) -> None:
        self._mapping(key).pop(member, None)

    async def zcount_from(self, key: str, low: float) -> int:
        return sum(1 for score in self._mapping(key).values() if float(str(score)) >= low)

    async def zdrop_below(self, key: str, high: float) -> None:
        mapping = self._mapping(key)
        for member in [member for member, score in mapping.items() if float(str(score)) < high]:
            del mapping[member]

    async def publish(self, channel: str, message: str) -> None:
        self._fanout.deliver(channel, message)

    @contextlib.asynccontextmanager
    async def listen(self, channel: str) -> AsyncIterator[asyncio.Queue[str]]:
        queue, _ = self._fanout.add(channel)
        try:
            yield queue
        finally:
            self._fanout.remove(channel, queue)

    async def close(self) -> None:
        self._values.clear()


class RedisBroker:
    """Rooms in Redis, so every worker process and host serves every room.

    One connection pool for commands and one pub/sub connection per process: a channel is subscribed when its
    first local listener arrives and unsubscribed when its last one leaves; one reader task hands each message to
    the local listeners' queues.
    """

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis  # only a deployment with Redis needs the package imported

        # A blocking pool: when every connection is busy (150 followers joining one worker at once), a command waits
        # for one instead of failing with "Too many connections" (a 500 for the follower).
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=REDIS_CONNECTIONS,
            timeout=REDIS_WAIT_S,
            decode_responses=True,
            health_check_interval=30,
        )
        self._redis = redis.Redis.from_pool(pool)  # closed with the client
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._fanout = _Fanout()
        self._reader: asyncio.Task[None] | None = None
        self._subscribing = asyncio.Lock()

    async def get(self, key: str) -> str | None:
        return await self._redis.get(key)

    async def set(self, key: str, value: str, ttl_s: int, only_new: bool = False) -> bool:
        return bool(await self._redis.set(key, value, ex=ttl_s, nx=only_new))

    async def delete(self, *keys: str) -> None:
        if keys:
            await self._redis.delete(*keys)

    async def touch(self, key: str, ttl_s: int) -> None:
        await self._redis.expire(key, ttl_s)

    async def hset(self, key: str, field: str, value: str, ttl_s: int) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            await pipe.hset(key, field, value).expire(key, ttl_s).execute()

    async def hget(self, key: str, field: str) -> str | None:
        return await self._redis.hget(key, field)

    async def hgetall(self, key: str) -> dict[str, str]:
        return await self._redis.hgetall(key)

    async def hlen(self, key: str) -> int:
        return await self._redis.hlen(key)

    async def zadd(self, key: str, member: str, score: float, ttl_s: int) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            await pipe.zadd(key, {member: score}).expire(key, ttl_s).execute()

    async def zrem(self, key: str, member: str) -> None:
        await self._redis.zrem(key, member)

    async def zcount_from(self, key: str, low: float) -> int:
        return await self._redis.zcount(key, low, "+inf")

    async def zdrop_below(self, key: str, high: float) -> None:
        await self._redis.zremrangebyscore(key, "-inf", f"({high}")

    async def publish(self, channel: str, message: str) -> None:
        await self._redis.publish(channel, message)

    async def _read(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except Exception:  # a dropped connection: redis-py reconnects and resubscribes on the next read
                await asyncio.sleep(0.5)
                continue
            if message is None:
                if not self._pubsub.subscribed:
                    await asyncio.sleep(0.05)  # get_message returns at once while nothing is subscribed
                continue
            if message.get("type") == "message":
                self._fanout.deliver(message["channel"], message["data"])

    @contextlib.asynccontextmanager
    async def listen(self, channel: str) -> AsyncIterator[asyncio.Queue[str]]:
        async with self._subscribing:
            queue, first = self._fanout.add(channel)
            if first:
                await self._pubsub.subscribe(channel)
            if self._reader is None or self._reader.done():
                self._reader = asyncio.create_task(self._read(), name="redis-rooms-reader")
        try:
            yield queue
        finally:
            async with self._subscribing:
                if self._fanout.remove(channel, queue):
                    with contextlib.suppress(Exception):  # a broken connection has forgotten it anyway
                        await self._pubsub.unsubscribe(channel)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
        await self._redis.aclose()


def make_broker(redis_url: str | None) -> Broker:
    """Redis when a URL is configured (TRAPSCOPE_REDIS_URL), else the in-process broker."""
    return RedisBroker(redis_url) if redis_url else MemoryBroker()
