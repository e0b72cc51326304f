"""The local stack: Redis, workers and the API as plain processes, for `make up` and the tests."""
