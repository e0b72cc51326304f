"""200 slow clients, dribbling their headers or their body, while others use the API: it keeps answering."""

from __future__ import annotations

import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.faults.conftest import FaultStack

pytestmark = pytest.mark.faults

SLOW = 200
SECONDS = 12.0
GOOD = {"x5": "sunday", "x12": "$3709.93", "x31": "asia", "x81": "November", "x91": "0.5"}


def dribble(url: str, stop: threading.Event, opened: list[int]) -> None:
    """Hold SLOW connections open, each sending one byte of its request every half second.

    Appends to `opened` how many were opened, and at the end how many the server cut off.
    """
    host, port = url.removeprefix("http://").split(":")
    sockets = []
    for number in range(SLOW):
        sock = socket.create_connection((host, int(port)), timeout=5)
        if number % 2:  # the headers arrive, then a body that never ends
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100000\r\n\r\n[")  # fmt: skip
        else:  # headers that never end
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
        sockets.append(sock)
    opened.append(len(sockets))
    cut: set[int] = set()
    while not stop.wait(0.5):
        for number, sock in enumerate(sockets):
            try:
                sock.send(b" " if number % 2 else b"X")
            except OSError:
                cut.add(number)  # the server closed it: it may
    for sock in sockets:
        sock.close()
    opened.append(len(cut))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def test_slow_clients_do_not_starve_the_others(fault_stack: FaultStack, report) -> None:
    fault_stack.start_api()
    url = fault_stack.url
    stop, opened = threading.Event(), []
    holder = threading.Thread(target=dribble, args=(url, stop, opened))
    holder.start()
    while not opened and holder.is_alive():
        time.sleep(0.05)
    time.sleep(1.0)  # every slow connection is in by now
    timings: dict[str, list[float]] = {"health": [], "predict": []}
    failures = {"health": 0, "predict": 0}
    deadline = time.monotonic() + SECONDS
    try:
        while time.monotonic() < deadline:
            for name in timings:
                started = time.perf_counter()
                try:
                    if name == "health":
                        ok = requests.get(f"{url}/health", timeout=5).status_code == 200
                    else:
                        ok = requests.post(f"{url}/predict", json=GOOD, timeout=5).status_code == 202
                except requests.RequestException:
                    ok = False
                if ok:
                    timings[name].append((time.perf_counter() - started) * 1000)
                else:
                    failures[name] += 1
            time.sleep(0.02)
    finally:
        stop.set()
        holder.join()
    figures: dict[str, object] = {"slow connections": opened[0], "cut off by the server": opened[-1]}
    for name, values in timings.items():
        figures[f"{name} answered"] = len(values)
        figures[f"{name} failed"] = failures[name]
        if values:
            figures[f"{name} p50 ms"] = round(statistics.median(values), 1)
            figures[f"{name} p99 ms"] = round(percentile(values, 0.99), 1)
    report("slow clients", figures)
    assert opened[0] == SLOW
    assert failures == {"health": 0, "predict": 0}
    # The target is a p99 under 100 ms; the bound here is loose, as the machine is shared and noisy.
    assert percentile(timings["health"], 0.99) < 1000 and percentile(timings["predict"], 0.99) < 1000


def test_waiting_requests_work_on_the_server_model(fault_stack: FaultStack, report) -> None:
    """`?wait=` on gevent: waits end when their job does, past MAX_WAITERS a request answers at once."""
    fault_stack.start_worker("w1")
    fault_stack.start_api()
    url = fault_stack.url
    requests.post(f"{url}/predict?wait=30", json=GOOD, timeout=60)  # the worker has loaded the model

    def submit_and_wait(_: int) -> tuple[int, float]:
        started = time.perf_counter()
        response = requests.post(f"{url}/predict?wait=20", json=GOOD, timeout=60)
        return response.status_code, time.perf_counter() - started

    with ThreadPoolExecutor(40) as pool:
        outcomes = list(pool.map(submit_and_wait, range(40)))
        health = [requests.get(f"{url}/health", timeout=5).status_code for _ in range(20)]
    statuses = sorted(status for status, _ in outcomes)
    report(
        "waiting on gevent",
        {
            "200 (ended within the wait)": statuses.count(200),
            "202 (answered at once)": statuses.count(202),
            "slowest s": round(max(seconds for _, seconds in outcomes), 2),
        },
    )
    assert set(statuses) <= {200, 202} and statuses.count(200) >= 12  # at least one process's waiters
    assert health == [200] * 20
