#!/usr/bin/env bash
# Start the whole service with docker compose and wait until the API is ready to accept jobs.
# Creates .env from .env.example with random secrets on first use; never overwrites an existing .env.
# With --env-only it does only that, for a plain `docker compose up` afterwards.
# WAIT_TRIES and WAIT_SECONDS bound the wait for the API (default 60 tries, 2 s apart).
set -euo pipefail
cd "$(dirname "$0")"

wait_tries="${WAIT_TRIES:-60}"
wait_seconds="${WAIT_SECONDS:-2}"

fail() {
    echo "run_api.sh: $*" >&2
    exit 1
}

show_logs() {
    docker compose ps >&2 || true
    docker compose logs --tail 50 >&2 || true
}

random_hex() {
    od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'
}

prepare_env() {
    [[ ! -f .env ]] || return 0
    [[ -f .env.example ]] || fail ".env.example is missing"
    local redis_password flower_auth api_key
    redis_password="$(random_hex 24)"
    flower_auth="admin:$(random_hex 12)"
    api_key="$(random_hex 24)"
    (
        umask 077
        sed -e "s/^REDIS_PASSWORD=.*/REDIS_PASSWORD=${redis_password}/" \
            -e "s/^FLOWER_BASIC_AUTH=.*/FLOWER_BASIC_AUTH=${flower_auth}/" \
            -e "s/^# API_KEYS=.*/API_KEYS=${api_key}/" \
            .env.example > .env
    )
    echo "created .env with a random REDIS_PASSWORD, FLOWER_BASIC_AUTH and API key (API_KEYS); all are in .env"
}

# --env-only: prepare .env for a plain `docker compose up`, and stop there.
if [[ "${1:-}" == "--env-only" ]]; then
    prepare_env
    exit 0
fi

command -v docker > /dev/null || fail "docker is not installed"
docker compose version > /dev/null 2>&1 || fail "docker compose (the Compose v2 plugin) is not available"
command -v curl > /dev/null || fail "curl is not installed"
prepare_env

if ! docker compose up -d --build; then
    show_logs
    fail "docker compose up failed"
fi

# The published port, as compose resolved it from the environment and .env.
published="$(docker compose port api 1313 2> /dev/null || true)"
port="${published##*:}"
port="${port:-${PORT:-1313}}"
base="http://127.0.0.1:${port}"

for ((try = 1; try <= wait_tries; try++)); do
    if curl --silent --fail --max-time 2 "${base}/ready" > /dev/null; then
        cat <<EOF
The API is up at ${base}.

Submit one record or a JSON list of records; the answer carries a task_id:
  curl -H 'Content-Type: application/json' -d '{"x12": "\$1,000.00"}' ${base}/predict

Ask for the status, and the results once it has succeeded:
  curl ${base}/tasks/<task_id>

With API_KEYS set in .env (a first run sets one), add -H 'Authorization: Bearer <key>' to both.
Logs: docker compose logs -f    Stop: docker compose down
EOF
        exit 0
    fi
    sleep "${wait_seconds}"
done

show_logs
fail "the API was not ready on ${base}/ready after ${wait_tries} tries"
