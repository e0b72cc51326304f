import time

import pytest

from jobs import keys
from jobs.leases import Leases
from worker.heartbeat import Heartbeat


@pytest.fixture
def heartbeat(redis_db):
    beat = Heartbeat(Leases(redis_db, lease_seconds=0.5), "host:1")  # renews every 0.1 s
    beat.start()
    yield beat
    beat.stop()
    beat.join(5)


def test_leases_outlive_their_length_while_the_work_runs_and_end_with_it(heartbeat, redis_db) -> None:
    redis_db.zadd(keys.LEASED, {"job:1": time.time() + 0.5})  # as take_ready.lua leases a small job
    with heartbeat.chunk("job:0"), heartbeat.batch(["job:1"]):
        time.sleep(1.5)  # three leases long
        now = time.time()
        assert redis_db.zscore(keys.LEASES, "job:0") > now
        assert redis_db.zscore(keys.LEASED, "job:1") > now
        assert redis_db.zscore(keys.WORKERS, "host:1") > now
    assert redis_db.zscore(keys.LEASES, "job:0") is None  # released once recorded
    time.sleep(0.7)
    assert redis_db.zscore(keys.LEASED, "job:1") < time.time()  # no longer renewed: finish_batch removes it


def test_work_that_raised_keeps_its_lease_until_it_lapses(heartbeat, redis_db) -> None:
    with pytest.raises(ConnectionError), heartbeat.chunk("job:0"):
        raise ConnectionError("redis went away mid-chunk")
    time.sleep(0.7)
    assert Leases(redis_db, 0.5).lapsed() == ["job:0"]  # left for the watchdog to re-drive


def test_a_process_that_stops_leaves_the_live_workers(heartbeat, redis_db) -> None:
    time.sleep(0.2)
    assert Leases(redis_db, 0.5).workers_alive() == 1
    heartbeat.stop()
    heartbeat.join(5)
    assert Leases(redis_db, 0.5).workers_alive() == 0
