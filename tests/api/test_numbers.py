"""Query numbers are plain ASCII: what int() and float() would also read is refused with the parameter's 422."""

from urllib.parse import quote

import pytest

from api.numbers import decimal, integer
from tests.api.test_routes import RECORD, post

LOOSE = ["5_000", "+5", " 5", "5 ", "\u0665", "\uff15", "0x5", "", "--5"]


@pytest.mark.parametrize("raw", LOOSE)
def test_loose_spellings_are_not_numbers(raw: str) -> None:
    assert integer(raw) is None
    assert decimal(raw) is None
    assert decimal(raw + ".5") is None


def test_plain_spellings_are() -> None:
    assert (integer("0"), integer("5000"), integer("9" * 30), integer("9" * 4301)) == (0, 5000, 10**30 - 1, None)
    plain = ("0.5", "1", "30.0", "1e-05", "2.5E+1", "-0.0")
    assert [decimal(raw) for raw in plain] == [0.5, 1.0, 30.0, 1e-05, 25.0, 0.0]
    assert integer("-1") is None  # no count is negative; a negative decimal is refused by its range
    assert [decimal(raw) for raw in ("nan", "inf", "infinity", ".5", "5.", "1e", "1_0.5")] == [None] * 7


@pytest.mark.parametrize("raw", ["5_000", "+5", "\u0665", "1_0"])
def test_every_query_number_refuses_them(client, raw: str) -> None:
    raw = quote(raw)  # '+' unquoted would arrive as a space
    task_id = post(client, RECORD).get_json()["task_id"]
    asked = {
        "offset": (f"/tasks/{task_id}?offset={raw}", "invalid_page"),
        "limit": (f"/tasks/{task_id}?limit={raw}", "invalid_page"),
        "wait": (f"/tasks/{task_id}?wait={raw}", "invalid_wait"),
    }
    for name, (url, code) in asked.items():
        response = client.get(url)
        assert (response.status_code, response.get_json()["error"]["code"]) == (422, code), name
    queries = (f"threshold=0.{raw}", f"threshold={raw}", f"version={raw}", "version=" + "9" * 5000)
    for query, code in zip(queries, ["invalid_threshold"] * 2 + ["invalid_version"] * 2, strict=True):
        response = post(client, RECORD, query=f"?{query}")
        assert (response.status_code, response.get_json()["error"]["code"]) == (422, code), query
