"""The heavy-job queue and single-flight sharing, with real threads (deterministic: events, no sleeps)."""

from __future__ import annotations

import threading
import time

import pytest

from unlearning_lab.jobs import HeavyJobGate, QueueTimeout, default_gate
from unlearning_lab.store import ResultStore

TIMEOUT = 10  # seconds; only reached if something deadlocks


def _until(condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_one_slot_three_threads_queue_in_order_and_report_positions():
    gate = HeavyJobGate(max_concurrent=1)
    inside = 0
    max_inside = 0
    order: list[str] = []
    positions: dict[str, list[int]] = {"a": [], "b": [], "c": []}
    release = {name: threading.Event() for name in positions}
    lock = threading.Lock()

    def job(name: str) -> None:
        nonlocal inside, max_inside
        with gate.slot(on_wait=positions[name].append, poll_seconds=0.05):
            with lock:
                inside += 1
                max_inside = max(max_inside, inside)
                order.append(name)
            release[name].wait(TIMEOUT)
            with lock:
                inside -= 1

    threads = {name: threading.Thread(target=job, args=(name,)) for name in positions}
    threads["a"].start()
    _until(lambda: gate.active == 1, "a to start")
    threads["b"].start()
    _until(lambda: gate.waiting == 1, "b to queue")
    threads["c"].start()
    _until(lambda: gate.waiting == 2 and positions["c"] == [2], "c to queue behind b")
    assert (gate.active, gate.waiting) == (1, 2)
    assert positions["b"] == [1]

    release["a"].set()
    _until(lambda: order == ["a", "b"], "b to start")
    _until(lambda: positions["c"] == [2, 1], "c to move up")
    assert (gate.active, gate.waiting) == (1, 1)
    release["b"].set()
    release["c"].set()
    for thread in threads.values():
        thread.join(TIMEOUT)
    assert order == ["a", "b", "c"]
    assert max_inside == 1
    assert positions == {"a": [], "b": [1], "c": [2, 1]}
    assert (gate.active, gate.waiting) == (0, 0)


def test_slot_is_reentrant_and_leaving_the_line_frees_the_place():
    gate = HeavyJobGate(max_concurrent=1)
    with gate.slot():
        with gate.slot():  # nested on the same thread: no deadlock
            assert gate.active == 1

        class Left(BaseException):
            pass

        def leave(position: int) -> None:
            raise Left  # e.g. the user navigated away while queued

        errors: list[BaseException] = []

        def waiter() -> None:
            try:
                with gate.slot(on_wait=leave):
                    pass
            except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
                errors.append(exc)

        thread = threading.Thread(target=waiter)
        thread.start()
        thread.join(TIMEOUT)
        assert len(errors) == 1 and isinstance(errors[0], Left)
        assert gate.waiting == 0

        timed_out: list[BaseException] = []
        thread = threading.Thread(target=lambda: _expect_timeout(gate, timed_out))
        thread.start()
        thread.join(TIMEOUT)
        assert str(timed_out[0]) == "The server is busy with other users' jobs; please try again in a minute."
        assert gate.waiting == 0
    assert gate.active == 0


def _expect_timeout(gate: HeavyJobGate, out: list[BaseException]) -> None:
    with pytest.raises(QueueTimeout) as info:
        with gate.slot(timeout=0.05, poll_seconds=0.01):
            pass
    out.append(info.value)


def test_default_gate_reads_the_environment(monkeypatch):
    import unlearning_lab.jobs as jobs

    monkeypatch.setattr(jobs, "_default_gate", None)
    monkeypatch.setenv("UNLEARNING_LAB_MAX_HEAVY_JOBS", "3")
    assert default_gate().max_concurrent == 3
    assert default_gate() is default_gate()
    monkeypatch.setattr(jobs, "_default_gate", None)
    monkeypatch.setenv("UNLEARNING_LAB_MAX_HEAVY_JOBS", "zero")
    assert default_gate().max_concurrent == 2
    with pytest.raises(ValueError):
        HeavyJobGate(0)


def test_the_store_builds_once_for_concurrent_identical_keys():
    shared = ResultStore()
    calls = {"same": 0, "other": 0}
    proceed = threading.Event()
    results: list[object] = []
    told: list[int] = []

    def compute(key: str):
        def fn():
            calls[key] += 1
            proceed.wait(TIMEOUT)
            return {"key": key}

        return fn

    def ask(key: str) -> None:
        results.append(shared.get("ns", key, compute(key), on_shared=lambda: told.append(1)))

    threads = [threading.Thread(target=ask, args=("same",)) for _ in range(4)]
    threads.append(threading.Thread(target=ask, args=("other",)))
    for thread in threads:
        thread.start()
    _until(lambda: shared.waiting("ns", "same") == 3 and shared.building() == 2, "followers to join")
    proceed.set()
    for thread in threads:
        thread.join(TIMEOUT)
    assert calls == {"same": 1, "other": 1}
    same = [r for r in results if r["key"] == "same"]
    assert len(same) == 4 and all(r is same[0] for r in same)  # one shared object
    assert len(told) == 3
    assert shared.building() == 0
    # Finished builds are kept: asking again returns the same object without building.
    assert shared.get("ns", "same", compute("same")) is same[0]
    assert calls["same"] == 1


def test_the_store_shares_errors_but_not_interruptions():
    shared = ResultStore()
    started = threading.Event()
    proceed = threading.Event()
    outcomes: list[object] = []

    def failing():
        started.set()
        proceed.wait(TIMEOUT)
        raise ValueError("bad request")

    def follower() -> None:
        try:
            outcomes.append(shared.get("ns", "k", lambda: "follower computed"))
        except ValueError as exc:
            outcomes.append(exc)

    leader = threading.Thread(target=lambda: pytest.raises(ValueError, shared.get, "ns", "k", failing))
    leader.start()
    started.wait(TIMEOUT)
    thread = threading.Thread(target=follower)
    thread.start()
    _until(lambda: shared.waiting("ns", "k") == 1, "follower to join")
    proceed.set()
    leader.join(TIMEOUT)
    thread.join(TIMEOUT)
    assert len(outcomes) == 1 and isinstance(outcomes[0], ValueError) and str(outcomes[0]) == "bad request"

    class Stopped(BaseException):
        pass

    started.clear()
    proceed.clear()
    outcomes.clear()

    def stopped():
        started.set()
        proceed.wait(TIMEOUT)
        raise Stopped

    def stopped_leader() -> None:
        try:
            shared.get("ns", "k", stopped)
        except Stopped:
            pass

    leader = threading.Thread(target=stopped_leader)
    leader.start()
    started.wait(TIMEOUT)
    thread = threading.Thread(target=follower)
    thread.start()
    _until(lambda: shared.waiting("ns", "k") == 1, "follower to join")
    proceed.set()
    leader.join(TIMEOUT)
    thread.join(TIMEOUT)
    assert outcomes == ["follower computed"]  # the follower took over instead of being stopped


def test_a_page_job_that_waited_says_queued_then_drops_it_when_it_starts(monkeypatch):
    """ui.method_runs.gate_slot: while the slot is taken the status label gets 'Queued: 0 ahead', and "" (the plain
    label again) once the job starts, so no status box says "Queued" over a running job; a job that never waited
    gets no message at all."""
    from ui import method_runs

    gate = HeavyJobGate(max_concurrent=1)
    monkeypatch.setattr(method_runs.jobs, "default_gate", lambda: gate)
    messages: list[str] = []
    started, release = threading.Event(), threading.Event()

    def holder() -> None:
        with gate.slot():
            started.set()
            release.wait(TIMEOUT)

    def waiter() -> None:
        with method_runs.gate_slot(messages.append):
            messages.append("running")

    first = threading.Thread(target=holder)
    first.start()
    started.wait(TIMEOUT)
    second = threading.Thread(target=waiter)
    second.start()
    _until(lambda: messages == ["Queued: 0 ahead"], "the second job to queue")
    release.set()
    for thread in (first, second):
        thread.join(TIMEOUT)
    assert messages == ["Queued: 0 ahead", "", "running"]
    alone: list[str] = []
    with method_runs.gate_slot(alone.append):
        pass
    assert alone == []
