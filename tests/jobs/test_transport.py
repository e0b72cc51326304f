import pytest
import redis
from kombu import Connection

from jobs.transport import Transport


def detached_channel(url: str, transport: object):
    """A channel whose connection Celery has collected, as after a lost broker connection."""
    connection = Connection(url, transport=transport)
    channel = connection.channel()
    connection.collect()
    return channel


def test_stock_transport_fails_with_an_attribute_error_that_celery_finds_unrecoverable(redis_server) -> None:
    channel = detached_channel(redis_server.url, "redis")
    with pytest.raises(AttributeError):
        channel._connparams()


def test_our_transport_reports_a_connection_error_that_celery_logs_and_survives(redis_server) -> None:
    channel = detached_channel(redis_server.url, Transport)
    with pytest.raises(redis.ConnectionError, match="broker connection was closed"):
        channel._connparams()
    assert redis.ConnectionError in channel.connection_errors or any(
        issubclass(redis.ConnectionError, error) for error in channel.connection_errors
    )


def test_our_transport_works_while_connected(redis_server) -> None:
    with Connection(redis_server.url, transport=Transport) as connection:
        queue = connection.SimpleQueue("transport-test")
        queue.put({"n": 1}, serializer="json")
        message = queue.get(timeout=5)
        assert message.payload == {"n": 1}
        message.ack()
        queue.close()
