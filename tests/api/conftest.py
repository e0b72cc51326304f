from collections.abc import Iterator

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from settings import Secret, Settings

API_DB = 1  # the integration stack uses database 0


@pytest.fixture
def redis_db(redis_server) -> Iterator[redis.Redis]:
    yield from redis_server.flushed(API_DB)


@pytest.fixture
def settings(redis_server, redis_db, model_store_dir) -> Settings:
    return Settings(
        redis_url=Secret(redis_server.url_of(API_DB)),
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
    app.extensions["glmq"].waiters.client.close()
    app.extensions["glmq"].streams.client.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
