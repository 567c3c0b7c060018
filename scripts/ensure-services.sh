#!/usr/bin/env bash
# Starts the local services the integration tests talk to (Redis 6379, RabbitMQ 5672, PostgreSQL
# 5432 on 127.0.0.1) when they are down. It never fails the run: a service that cannot be started
# only gets a warning, and the tests that need it then fail with their own, clearer message.
set -uo pipefail

warn() { echo "warning: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for SECONDS CHECK...: true as soon as CHECK succeeds, false if it never does in time.
wait_for() {
    local seconds=$1; shift
    for ((i = 0; i < seconds; i++)); do
        "$@" && return 0
        sleep 1
    done
    "$@"
}

redis_up() {
    if command -v redis-cli >/dev/null 2>&1; then
        [ "$(timeout 5 redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]
    else
        port_open 6379
    fi
}

postgres_up() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h 127.0.0.1 -p 5432
    else
        port_open 5432
    fi
}

rabbitmq_up() { port_open 5672; }

if ! redis_up; then
    if command -v redis-server >/dev/null 2>&1; then
        echo "Starting Redis..." >&2
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null 2>&1
        wait_for 10 redis_up || warn "Redis did not start on 127.0.0.1:6379"
    else
        warn "Redis is down and redis-server is not installed"
    fi
fi

if ! rabbitmq_up; then
    if command -v rabbitmq-server >/dev/null 2>&1; then
        echo "Starting RabbitMQ (this can take up to a minute)..." >&2
        rabbitmq-server -detached >/dev/null 2>&1
        wait_for 60 rabbitmq_up || warn "RabbitMQ did not start on 127.0.0.1:5672"
    else
        warn "RabbitMQ is down and rabbitmq-server is not installed"
    fi
fi

if ! postgres_up; then
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -n "$version" ]; then
        echo "Starting PostgreSQL $version..." >&2
        pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1
        wait_for 30 postgres_up || warn "PostgreSQL did not start on 127.0.0.1:5432"
    else
        warn "PostgreSQL is down and no cluster was found under /etc/postgresql"
    fi
fi

exit 0
