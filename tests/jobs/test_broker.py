import pytest

from jobs.broker import QUEUE, WEBHOOK_QUEUE, chunk_args, make_celery
from settings import Secret, Settings

JOB_ID = "0123456789abcdef0123456789abcdef"


def test_chunk_args_are_a_job_id_and_a_chunk_number() -> None:
    assert chunk_args([JOB_ID, 0]) == (JOB_ID, 0)
    assert chunk_args((JOB_ID, 7)) == (JOB_ID, 7)


@pytest.mark.parametrize(
    "args",
    [[], [JOB_ID], [JOB_ID, 0, 1], [JOB_ID, True], [JOB_ID, 0.0], [JOB_ID, -1], [JOB_ID, "0"], [JOB_ID, None],
     [JOB_ID.upper(), 0], [JOB_ID + "}:x", 0], [7, 0], [None, 0]],
)  # fmt: skip
def test_anything_else_is_refused(args) -> None:
    assert chunk_args(args) is None


def test_an_amqp_broker_url_makes_the_queue_a_quorum_queue_and_leaves_job_state_on_redis() -> None:
    settings = Settings(redis_url=Secret("redis://db:6379/0"), celery_broker_url=Secret("amqp://u:p@mq:5672//"))
    conf = make_celery(settings).conf
    assert conf.broker_url == "amqp://u:p@mq:5672//"
    quorum = {"x-queue-type": "quorum"}
    assert [(q.name, q.queue_arguments, q.durable) for q in conf.task_queues] == [
        (QUEUE, quorum, True),
        (WEBHOOK_QUEUE, quorum, True),
    ]
    assert conf.worker_detect_quorum_queues is True  # a quorum queue refuses a global prefetch limit
    assert conf.broker_transport is None  # kombu's AMQP transport, not the Redis one of jobs.transport
    assert settings.redis_url.reveal() == "redis://db:6379/0"


def test_without_a_broker_url_the_queue_is_on_redis() -> None:
    conf = make_celery(Settings(redis_url=Secret("redis://db:6379/0"))).conf
    assert (conf.broker_url, conf.broker_transport) == ("redis://db:6379/0", "jobs.transport:Transport")
    assert conf.broker_transport_options["visibility_timeout"] == Settings().visibility_timeout
