"""Idempotency-Key on POST /predict, in process against a real Redis: replays, reuse, bad keys, scoping."""

from dataclasses import replace

import pytest

from api import create_app, idempotency
from api.errors import ApiError
from jobs import keys
from settings import Secret
from tests.api.test_routes import RECORD, post

KEY = {"Idempotency-Key": "order-42"}


def jobs_in(redis_db) -> int:
    return len(redis_db.keys(keys.job("*")))


def test_a_repeat_answers_with_the_first_job_and_says_it_is_a_replay(client, redis_db) -> None:
    first = post(client, [RECORD] * 3, headers=KEY)
    again = post(client, [RECORD] * 3, headers=KEY)
    assert (first.status_code, again.status_code) == (202, 202)
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert jobs_in(redis_db) == 1


def test_a_quoted_key_is_the_same_key(client, redis_db) -> None:
    first = post(client, RECORD, headers={"Idempotency-Key": '"abc"'}).get_json()["task_id"]
    assert post(client, RECORD, headers={"Idempotency-Key": "abc"}).get_json()["task_id"] == first


@pytest.mark.parametrize(
    ("body", "query"),
    [
        ([RECORD] * 4, ""),
        ([RECORD] * 3, "?threshold=0.5"),
        ([RECORD] * 3, "?strict=true"),
        ([RECORD] * 3, "?fields=phat"),
        ([RECORD] * 3, "?id_field=x5"),
    ],
    ids=["another body", "another threshold", "strict", "fields", "id_field"],
)
def test_the_same_key_for_another_request_is_422(client, redis_db, body, query) -> None:
    assert post(client, [RECORD] * 3, headers=KEY).status_code == 202
    reused = post(client, body, query=query, headers=KEY)
    assert reused.status_code == 422
    assert reused.get_json()["error"]["code"] == "idempotency_key_reused"
    assert jobs_in(redis_db) == 1


def test_wait_is_not_part_of_the_fingerprint(client, redis_db) -> None:
    first = post(client, RECORD, headers=KEY).get_json()["task_id"]
    again = post(client, RECORD, query="?wait=0.1", headers=KEY)
    assert (again.status_code, again.get_json()["task_id"]) == (202, first)


@pytest.mark.parametrize(
    "key", ["", "x" * 256, "caf\u00e9", "tab\there", " "], ids=["empty", "256", "non-ascii", "tab", "space"]
)
def test_a_malformed_key_is_400_and_makes_no_job(client, redis_db, key) -> None:
    response = post(client, RECORD, headers={"Idempotency-Key": key})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_idempotency_key"
    assert jobs_in(redis_db) == 0


def test_a_refused_body_leaves_the_key_free(client, redis_db) -> None:
    assert post(client, [], headers=KEY).status_code == 422
    assert post(client, RECORD, headers=KEY).status_code == 202
    assert jobs_in(redis_db) == 1


def test_the_key_is_scoped_to_the_api_key(settings, redis_db) -> None:
    client = create_app(replace(settings, api_keys=(Secret("alpha"), Secret("beta")))).test_client()
    alpha = post(client, RECORD, headers={**KEY, "Authorization": "Bearer alpha"}).get_json()["task_id"]
    beta = post(client, RECORD, headers={**KEY, "Authorization": "Bearer beta"}).get_json()["task_id"]
    assert alpha != beta
    assert jobs_in(redis_db) == 2


def test_the_claim_expires_with_the_job(client, redis_db, settings) -> None:
    post(client, RECORD, headers=KEY)
    (claim,) = redis_db.keys(keys.idempotency("*", "*"))
    assert idempotency.PENDING_SECONDS < redis_db.ttl(claim) <= settings.result_ttl_seconds


def test_a_claim_whose_request_died_before_its_job_frees_the_key_soon(app, client, redis_db) -> None:
    claims = app.extensions["glmq"].idempotency
    claim, earlier = claims.claim("addr:127.0.0.1", "k", "print")
    assert earlier is None
    assert 0 < redis_db.ttl(claim.redis_key) <= idempotency.PENDING_SECONDS
    claims.record(claim, "f" * 32)
    assert claims.claim("addr:127.0.0.1", "k", "print") == (claim, "f" * 32)
    with pytest.raises(ApiError) as caught:
        claims.claim("addr:127.0.0.1", "k", "another print")
    assert (caught.value.status, caught.value.code) == (422, "idempotency_key_reused")


def test_a_repeat_that_finds_the_first_still_in_progress_is_409_with_retry_after(app, monkeypatch) -> None:
    monkeypatch.setattr(idempotency, "WAIT_SECONDS", 0.1)
    claims = app.extensions["glmq"].idempotency
    claims.claim("addr:127.0.0.1", "k", "print")  # claimed, its job not recorded yet
    with pytest.raises(ApiError) as caught:
        claims.claim("addr:127.0.0.1", "k", "print")
    assert (caught.value.status, caught.value.code, caught.value.headers) == (
        409, "idempotency_key_in_use", {"Retry-After": "1"},
    )  # fmt: skip
