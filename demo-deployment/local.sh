#!/usr/bin/env bash
# Run the reference site_audit flow on real Celery workers, on this machine:
# two `selflow worker` processes on Redis, one flow submitted with `selflow run-flow --broker`.
#
#   bash demo-deployment/local.sh [BROKER_URL]      (default redis://127.0.0.1:6379/3)
#
# Run it from the repository root after `make install`. For RabbitMQ, pass an amqp:// URL and
# set SELFLOW_RESULT_BACKEND to a redis:// URL (flow state lives in Redis).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

broker="${1:-redis://127.0.0.1:6379/3}"
logs="$(mktemp -d)"
pids=()
stop_workers() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_workers EXIT

for name in w1 w2; do
  python -m selflow worker config --broker "$broker" -c 2 --hostname "$name@%h" -l warning \
    >"$logs/$name.log" 2>&1 &
  pids+=("$!")
done
echo "workers started (logs in $logs)"

python -m selflow run-flow config --flow site_audit --broker "$broker" --timeout 120 \
  --node-args '{"site": "https://shop.acme.test", "notify": "#web-audit"}'
