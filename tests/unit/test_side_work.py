"""The gate that cheap calls (Tokenize, Detokenize) pass while their engine generates: a bounded
rate, shared round-robin between the clients waiting; no limit while the engine is idle."""

from __future__ import annotations

import asyncio

import pytest

from server.core.side_work import SideWorkGate
from server.errors import QueueFull


class FakeTime:
    """A clock that moves only when the gate sleeps, so the tests are exact and instant."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def gate(time: FakeTime, *, per_second=10.0, burst=1, max_waiting=100) -> SideWorkGate:
    return SideWorkGate(per_second=per_second, burst=burst, max_waiting=max_waiting,
                        clock=time.clock, sleep=time.sleep)


def run(coroutine):
    return asyncio.run(coroutine)


def test_an_idle_engine_admits_every_call_at_once():
    async def story():
        time = FakeTime()
        g = gate(time)
        for _ in range(50):
            await g.admit("a", lambda: False)
        return time.now

    assert run(story()) == 0.0


def test_while_generating_calls_pass_at_the_configured_rate():
    async def story():
        time = FakeTime()
        g = gate(time, per_second=10, burst=2)
        admitted = []

        async def call(i):
            await g.admit("a", lambda: True)
            admitted.append(time.now)

        await asyncio.gather(*(call(i) for i in range(12)))
        return admitted

    admitted = run(story())
    assert len(admitted) == 12
    assert admitted[:2] == [0.0, 0.0]  # the burst
    assert admitted[-1] == pytest.approx(1.0)  # ten more at 10 per second
    assert admitted == sorted(admitted)


def test_permits_go_round_robin_so_a_flood_delays_only_its_sender():
    async def story():
        time = FakeTime()
        g = gate(time, per_second=10, burst=1)
        order = []

        async def call(client, i):
            await g.admit(client, lambda: True)
            order.append(f"{client}{i}")

        flood = [asyncio.create_task(call("flood", i)) for i in range(6)]
        await asyncio.sleep(0)
        single = asyncio.create_task(call("quiet", 0))
        await asyncio.gather(*flood, single)
        return order

    order = run(story())
    # The flood's first call used the burst; then the quiet client is next, not seventh.
    assert order[:3] == ["flood0", "flood1", "quiet0"]


def test_too_many_waiting_is_queue_full_and_a_cancelled_waiter_leaves_the_queue():
    async def story():
        time = FakeTime()
        g = gate(time, per_second=1, burst=1, max_waiting=2)
        await g.admit("a", lambda: True)  # the burst
        waiters = [asyncio.create_task(g.admit("a", lambda: True)) for _ in range(2)]
        await asyncio.sleep(0)
        assert g.waiting == 2
        with pytest.raises(QueueFull):
            await g.admit("b", lambda: True)
        waiters[1].cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        return g.waiting

    assert run(story()) == 0


def test_waiters_go_at_once_when_the_engine_stops_generating():
    async def story():
        time = FakeTime()
        g = gate(time, per_second=0.001, burst=1)
        generating = [True]
        await g.admit("a", lambda: generating[0])
        waiters = [asyncio.create_task(g.admit("a", lambda: generating[0])) for _ in range(5)]
        await asyncio.sleep(0)
        generating[0] = False
        await asyncio.wait_for(asyncio.gather(*waiters), timeout=5)
        return g.waiting

    assert run(story()) == 0
