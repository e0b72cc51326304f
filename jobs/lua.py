"""The job store's Lua scripts: read from jobs/scripts/, run by their SHA, alone or in pipelines.

redis-py's registered scripts ask Redis whether they are cached (SCRIPT EXISTS) before every
pipeline that holds one: a round trip more on each hot-path call. These are sent by SHA straight
away instead; only when Redis answers NOSCRIPT (after a restart or a SCRIPT FLUSH) are they loaded,
and the pipeline sent again. Every pipeline built here must be safe to send twice.

On Redis Cluster a script may touch the keys of one slot only (every job's keys share its hash tag,
jobs.keys), and redis-py splits a pipeline by node and sends the parts independently, so the order of
commands on different nodes is lost. A pipeline is therefore built in ordered stages: one Redis gets
all of them in one round trip, as before; a cluster gets one stage after another, each only once the
stage before it has succeeded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

import redis
from redis.client import Pipeline
from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError

NAMES = (
    "create_job", "start_chunk", "finish_chunk", "fail_job", "mark_ready", "take_ready", "requeue", "take_lock",
    "claim_webhook", "start_webhook", "finish_webhook",
)  # fmt: skip


class Scripts:
    """The scripts of jobs/scripts/, by name, for one Redis client."""

    def __init__(self, client: redis.Redis | RedisCluster) -> None:
        self.client = client
        folder = resources.files("jobs").joinpath("scripts")
        self._source = {name: folder.joinpath(f"{name}.lua").read_text() for name in NAMES}
        self._sha = {name: hashlib.sha1(text.encode()).hexdigest() for name, text in self._source.items()}

    def source(self, name: str) -> str:
        """Return a script's text."""
        return self._source[name]

    def run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run one script now."""
        try:
            return self.client.evalsha(self._sha[name], len(keys), *keys, *args)
        except NoScriptError:
            self._load()
            return self.client.evalsha(self._sha[name], len(keys), *keys, *args)

    def queue(self, pipe: Pipeline, name: str, keys: Sequence[str], args: Sequence[Any]) -> None:
        """Add a script call to a pipeline that `pipelined` is building."""
        # As a plain command: redis-py's cluster pipeline refuses its evalsha method, but routes EVALSHA
        # by its keys, which must then share a slot.
        pipe.execute_command("EVALSHA", self._sha[name], len(keys), *keys, *args)

    def pipelined(self, *stages: Callable[[Pipeline], None]) -> list[Any]:
        """Build a pipeline with the `stages` in order, send it (no transaction) and return all the replies.

        Raise the first error. On a cluster each stage is a round trip of its own (see above).
        """
        if not isinstance(self.client, RedisCluster):
            return self._send(stages)
        return [reply for stage in stages for reply in self._send([stage])]

    def _send(self, stages: Sequence[Callable[[Pipeline], None]]) -> list[Any]:
        for attempt in (1, 2):
            pipe = self.client.pipeline(transaction=False)
            for fill in stages:
                fill(pipe)
            replies = pipe.execute(raise_on_error=False)
            if attempt == 1 and any(isinstance(reply, NoScriptError) for reply in replies):
                self._load()
                continue
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
            return replies
        raise AssertionError("unreachable")

    def _load(self) -> None:
        # On a cluster, SCRIPT LOAD goes to every primary.
        for text in self._source.values():
            self.client.script_load(text)
