import json

from jobs.broker import QUEUE


def samples(text: str) -> dict[str, float]:
    """Parse the Prometheus text format's sample lines into {name{labels}: value}."""
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines}


def test_metrics_count_the_queue_and_the_unfinished_jobs(client, redis_db) -> None:
    before = client.get("/metrics")
    assert before.mimetype == "text/plain"
    assert samples(before.get_data(as_text=True)) == {
        "glmq_chunks_waiting": 0,
        "glmq_chunks_delivered": 0,
        "glmq_jobs_unfinished": 0,
        'glmq_model_served{name="glm26",version="1"}': 1,
    }
    records = [{"x12": "$1.00"}] * 250  # three chunks of 100
    client.post("/predict", data=json.dumps(records), content_type="application/json")
    client.post("/predict", data=json.dumps(records[:1]), content_type="application/json")
    redis_db.hset("unacked", "tag-1", "{}")  # as kombu records a message a worker holds
    after = samples(client.get("/metrics").get_data(as_text=True))
    assert (after["glmq_chunks_waiting"], after["glmq_chunks_delivered"], after["glmq_jobs_unfinished"]) == (4, 1, 2)
    assert redis_db.llen(QUEUE) == 4


def test_metrics_say_when_no_model_is_served(settings, tmp_path) -> None:
    from dataclasses import replace

    from api import create_app

    client = create_app(replace(settings, model_store_dir=tmp_path)).test_client()
    assert samples(client.get("/metrics").get_data(as_text=True))["glmq_model_served"] == 0
