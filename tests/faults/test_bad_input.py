"""Over a thousand malformed requests of many kinds: JSON 4xx with stable codes, no 5xx, no leak."""

import collections
import gzip
import itertools
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.faults

JSON = {"Content-Type": "application/json"}
LIMIT = 1_000_000
GOOD = {"x5": "sunday", "x12": "$3709.93", "x31": "asia", "x81": "November", "x91": "0.5"}

# kind -> (method, query, body, headers, expected status, expected code)
REQUEST_LEVEL = {
    "bad json": ("POST", "", b"{not json", JSON, 400, "malformed_json"),
    "truncated json": ("POST", "", b'[{"x12": 1', JSON, 400, "malformed_json"),
    "invalid utf-8": ("POST", "", b'{"x12": "\xff\xfe"}', JSON, 400, "malformed_json"),
    "control character": ("POST", "", b'{"x12": "a\x01b"}', JSON, 400, "malformed_json"),
    "wrong content type": ("POST", "", json.dumps(GOOD).encode(), {"Content-Type": "text/plain"}, 415,
                           "unsupported_media_type"),
    "missing content type": ("POST", "", json.dumps(GOOD).encode(), {}, 415, "unsupported_media_type"),
    "empty body": ("POST", "", b"", JSON, 400, "empty_body"),
    "scalar": ("POST", "", b"42", JSON, 422, "invalid_shape"),
    "string": ("POST", "", b'"x"', JSON, 422, "invalid_shape"),
    "null": ("POST", "", b"null", JSON, 422, "invalid_shape"),
    "empty list": ("POST", "", b"[]", JSON, 422, "empty_batch"),
    "list of non-objects": ("POST", "", b"[1, 2, 3]", JSON, 422, "invalid_record"),
    "NaN": ("POST", "", b'{"x12": NaN}', JSON, 422, "non_finite_number"),
    "Infinity": ("POST", "", b'[{"x12": -Infinity}]', JSON, 422, "non_finite_number"),
    "1e999": ("POST", "", b'{"x12": 1e999}', JSON, 422, "non_finite_number"),
    "5,000-digit integer": ("POST", "", b'{"x12": ' + b"9" * 5_000 + b"}", JSON, 422, "non_finite_number"),
    "nesting 1,000 deep": ("POST", "", b"[" * 1_000 + b"]" * 1_000, JSON, 422, "invalid_record"),
    "nesting 100,000 deep": ("POST", "", b"[" * 100_000 + b"]" * 100_000, JSON, 422, "invalid_record"),
    "nesting 100,000 deep in a field": ("POST", "", b'{"x12": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", JSON, 422,
                                        "too_deeply_nested"),
    "1 MB string": ("POST", "", b'{"x12": "' + b"a" * LIMIT + b'"}', JSON, 413, "body_too_large"),
    "too many rows": ("POST", "", b"[" + b"{}," * 1_000 + b"{}]", JSON, 413, "too_many_rows"),
    "gzip bomb": ("POST", "", gzip.compress(b"[" + b"{}," * 3_000_000 + b"{}]"),
                  {**JSON, "Content-Encoding": "gzip"}, 413, "body_too_large"),  # stopped at the limit, inflating
    "deflate encoding": ("POST", "", json.dumps(GOOD).encode(), {**JSON, "Content-Encoding": "deflate"}, 415,
                         "unsupported_content_encoding"),
    "threshold not a number": ("POST", "?threshold=high", json.dumps(GOOD).encode(), JSON, 422, "invalid_threshold"),
    "threshold out of range": ("POST", "?threshold=-1", json.dumps(GOOD).encode(), JSON, 422, "invalid_threshold"),
    "wrong method": ("PUT", "", json.dumps(GOOD).encode(), JSON, 405, "method_not_allowed"),
}  # fmt: skip

# Well-formed requests whose rows are odd: accepted, and each bad row is reported in its place.
ROW_LEVEL = {
    "wrong types per field": [{"x12": [1, 2]}, {"x5": 3}, {"x12": True}, {"x91": {"a": 1}}, GOOD],
    "duplicate keys": b'[{"x12": "abc", "x12": "$1.00"}]',
}


def pss_kib(pids: list[int]) -> int:
    """Proportional set size: pages shared between processes are split among them, not counted twice."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
    return total


def api_pids(api) -> list[int]:
    children = Path(f"/proc/{api.pid}/task/{api.pid}/children").read_text().split()
    return [api.pid, *map(int, children)]


def settle(url: str, api) -> int:
    """Send every kind in rounds until a round no longer grows the API, and return its memory then.

    /health answers once one gunicorn worker is up, so another may still be importing, and each thread's
    first large body grows the allocator once. Neither is a leak; growth after this point would be.
    """
    memory = pss_kib(api_pids(api))
    for _ in range(6):
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda kind: send(url, kind), [*REQUEST_LEVEL] * 4))
        memory, previous = pss_kib(api_pids(api)), memory
        if memory - previous < 2 * 1024:
            break
    return memory


def send(url: str, kind: str) -> tuple[str, int, str | None, str]:
    method, query, body, headers, _, _ = REQUEST_LEVEL[kind]
    response = requests.request(method, f"{url}/predict{query}", data=body, headers=headers, timeout=60)
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = None
    return kind, response.status_code, code, response.headers.get("Content-Type", "")


def test_a_thousand_malformed_requests(fault_stack, report) -> None:
    fault_stack.env.update({"MAX_BODY_BYTES": str(LIMIT), "MAX_BATCH_ROWS": "1000"})
    fault_stack.start_worker("w1", concurrency=1)
    fault_stack.start_api()
    url = fault_stack.url
    ready = pss_kib(api_pids(fault_stack.api))
    before = settle(url, fault_stack.api)

    kinds = list(itertools.islice(itertools.cycle(REQUEST_LEVEL), 1_200))
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda kind: send(url, kind), kinds))

    def chunked_over_limit():
        yield b'{"x12": "'
        for _ in range(12):
            yield b"a" * 100_000
        yield b'"}'

    chunked = requests.post(f"{url}/predict", data=chunked_over_limit(), headers=JSON, timeout=60)
    after = pss_kib(api_pids(fault_stack.api))

    by_kind = collections.Counter((kind, status) for kind, status, _, _ in outcomes)
    server_errors = sum(1 for _, status, _, _ in outcomes if status >= 500)
    report(
        "bad input",
        {
            "requests": len(outcomes) + 1,
            "kinds": len(REQUEST_LEVEL) + 1,
            "5xx": server_errors,
            "API memory MiB when ready": round(ready / 1024, 1),
            "after warm-up": round(before / 1024, 1),
            "growth over the requests": round((after - before) / 1024, 1),
            "by kind and status": dict(sorted(by_kind.items())),
        },
    )
    assert server_errors == 0
    for kind, status, code, content_type in outcomes:
        _, _, _, _, want_status, want_code = REQUEST_LEVEL[kind]
        assert (status, code) == (want_status, want_code), kind
        assert content_type == "application/json", kind
    assert (chunked.status_code, chunked.json()["error"]["code"]) == (413, "body_too_large")
    assert after - before < 50 * 1024

    # Odd rows are accepted and reported row by row; a valid request still succeeds afterwards.
    odd = fault_stack.submit(ROW_LEVEL["wrong types per field"]).json()["task_id"]
    duplicate = requests.post(f"{url}/predict", data=ROW_LEVEL["duplicate keys"], headers=JSON, timeout=30)
    final = fault_stack.wait_all([odd, duplicate.json()["task_id"]], timeout=60)
    rows = final[odd]["results"]
    assert [row["error"]["field"] for row in rows[:4]] == ["x12", "x5", "x12", "x91"]
    assert rows[4]["phat"] > 0
    last_wins = final[duplicate.json()["task_id"]]["results"][0]
    assert "error" not in last_wins  # the second "x12", "$1.00", replaced "abc"
