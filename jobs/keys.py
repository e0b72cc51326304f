"""Every Redis key name the service uses, made here and nowhere else.

All keys of one job carry the hash tag `{<job id>}`, so on Redis Cluster they share one slot and a
Lua script may touch them together. Global structures (the deadline index, the watchdog lock, rate
windows) are written in calls of their own, never inside a job's script.

    glmq:{<id>}:job           hash: the job record (jobs.record.Job)
    glmq:{<id>}:payload:<k>   chunk k's records, JSON
    glmq:{<id>}:result:<k>    chunk k's results, JSON
    glmq:{<id>}:done          set of finished chunk numbers (makes completion idempotent)
    glmq:{<id>}:attempts      hash: chunk number -> deliveries seen
    glmq:{<id>}:ended         list: one token once the job has ended, for waiting clients
    glmq:{<id>}:webhook       hash: the delivery of the job's webhook event (jobs.webhooks)
    glmq:{<id>}:events        stream: `progress` per chunk recorded, then `succeeded` or `failed` (jobs.events)
    glmq:{batch}:ready        list: small jobs ("<id>:<rows>") waiting for a micro-batch
    glmq:{batch}:leased       sorted set: small jobs a worker has taken, by lease expiry
    glmq:{batch}:kick         set while a drain message is on its way to the workers
    glmq:{batch}:held:<task>  list: the entries of the micro-batch a drain task holds
    glmq:deadlines            sorted set: live job ids by deadline, for the watchdog
    glmq:webhooks             sorted set: job ids whose webhook is not yet delivered, by when to look again
    glmq:leases               sorted set: chunks ("<id>:<k>") a worker process runs, by lease expiry (jobs.leases)
    glmq:workers              sorted set: live worker processes ("<node>:<pid>"), by heartbeat expiry
    glmq:recovered:<run id>   set once one watchdog has re-driven the work a Redis restart (that run id) cut off
    glmq:watchdog             the lock that lets one watchdog sweep at a time
    glmq:rate:<caller>:<min>  a caller's submissions in one minute
    glmq:idem:<caller>:<h>    an Idempotency-Key's claim: "<fingerprint>", then "<fingerprint>:<job id>"
                              (h: SHA-256 of the key; api.idempotency)
    glmq:deadletter           list: broker messages no worker could run, newest first (jobs.deadletter)
    glmq:{stats}:rows         hash: "<model>:scored" and "<model>:failed" -> rows, since Redis was new
    glmq:{stats}:job_seconds  hash: "<model>:<status>:<le>" -> jobs that took at most le seconds (one bucket
                              each, not cumulative) and "<model>:<status>:sum" -> their seconds (jobs.stats)
    glmq:{stats}:poison       hash: why a message was dead-lettered -> how many were (jobs.deadletter)
    unacked                   kombu's hash of messages delivered to a worker and not yet acknowledged
"""

from __future__ import annotations

PREFIX = "glmq"
DEADLINES = f"{PREFIX}:deadlines"
WATCHDOG_LOCK = f"{PREFIX}:watchdog"
WEBHOOKS = f"{PREFIX}:webhooks"
LEASES = f"{PREFIX}:leases"
WORKERS = f"{PREFIX}:workers"
# The micro-batch structures share one hash tag, so their scripts stay in one cluster slot.
READY = f"{PREFIX}:{{batch}}:ready"
LEASED = f"{PREFIX}:{{batch}}:leased"
KICK = f"{PREFIX}:{{batch}}:kick"
# The service's counts share one hash tag, so one transaction may add to both.
STATS_ROWS = f"{PREFIX}:{{stats}}:rows"
STATS_JOB_SECONDS = f"{PREFIX}:{{stats}}:job_seconds"
STATS_POISON = f"{PREFIX}:{{stats}}:poison"
STATS_WEBHOOKS = f"{PREFIX}:{{stats}}:webhooks"
DEADLETTER = f"{PREFIX}:deadletter"
UNACKED = "unacked"  # kombu's name, not ours: read by /metrics, never written by us


def _tagged(job_id: str) -> str:
    return f"{PREFIX}:{{{job_id}}}"


def job(job_id: str) -> str:
    return f"{_tagged(job_id)}:job"


def payload(job_id: str, chunk: int) -> str:
    return f"{_tagged(job_id)}:payload:{chunk}"


def result(job_id: str, chunk: int) -> str:
    return f"{_tagged(job_id)}:result:{chunk}"


def done(job_id: str) -> str:
    return f"{_tagged(job_id)}:done"


def attempts(job_id: str) -> str:
    return f"{_tagged(job_id)}:attempts"


def held(holder: str) -> str:
    return f"{PREFIX}:{{batch}}:held:{holder}"


def ended(job_id: str) -> str:
    return f"{_tagged(job_id)}:ended"


def webhook(job_id: str) -> str:
    return f"{_tagged(job_id)}:webhook"


def events(job_id: str) -> str:
    return f"{_tagged(job_id)}:events"


def rate(caller: str, window: int) -> str:
    return f"{PREFIX}:rate:{caller}:{window}"


def idempotency(caller: str, key_hash: str) -> str:
    return f"{PREFIX}:idem:{caller}:{key_hash}"


def recovered(run_id: str) -> str:
    return f"{PREFIX}:recovered:{run_id}"
