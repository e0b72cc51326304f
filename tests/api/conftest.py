from collections.abc import Iterator

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from settings import Secret, Settings


@pytest.fixture
def redis_db(redis_server) -> Iterator[redis.Redis]:
    """Database 1 of the session's server, flushed for each test; the integration stack uses 0."""
    client = redis.Redis(port=redis_server.port, db=1)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def settings(redis_server, redis_db, model_store_dir) -> Settings:
    return Settings(
        redis_url=Secret(f"redis://127.0.0.1:{redis_server.port}/1"),
        model_store_dir=model_store_dir,
        max_batch_rows=1_000,
        max_body_bytes=1_000_000,
        chunk_rows=100,
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings)
    yield app
    app.extensions["glmq"].redis.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
