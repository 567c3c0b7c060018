"""Run the benchmark workloads on selflow and on plain Celery canvas, side by side, and print medians.

    python benchmarks/run.py [--repeat N] [--broker redis://127.0.0.1:6379/11]

From the repository root. What it does:

1. Flushes two Redis databases of the broker's server: the one ``--broker`` names (selflow's broker
   and state store) and the next one (the canvas app's broker and result backend). Do not point it
   at databases that hold anything you want to keep.
2. Starts two workers of two prefork processes each (``-c 2``), one per system, at log level
   WARNING: ``python -m selflow worker benchmarks/config`` and
   ``python -m celery -A benchmarks.canvas_tasks worker``.
3. Runs every workload once on each system to warm up, then ``--repeat`` times, alternating
   canvas and selflow (which goes first alternates too). Each run is timed on this process's wall
   clock from the start call to the moment the outcome is known here (selflow: ``wait_for_end``;
   canvas: ``AsyncResult.get``).
4. Runs each workload embedded (``EmbeddedRunner``, in this process) and times
   ``python -m selflow run-flow benchmarks/config --flow chain100`` in a fresh process, start-up
   included.
5. Prints one table: medians, min-max, and the ratio selflow / canvas of the medians; and a
   second one with the CPU time each run cost: the worker's processes (parent and pool, read
   from /proc, 10 ms ticks) and this process (the client: publishing, waiting).

The workloads (benchmarks/config and benchmarks/canvas_tasks.py): chain100 (100 tasks one after
the other), fanout200 (one task, 200 in parallel, one join), foreach1000 (1000 in parallel),
nested3 (sub-flows nested 3 deep; 7 tasks one after the other).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
CONFIG = "benchmarks/config"

#: workload -> (selflow flow, its node_args)
FLOWS: dict[str, tuple[str, Any]] = {
    "chain100": ("chain100", None),
    "fanout200": ("fanout200", None),
    "foreach1000": ("foreach1000", {"count": 1000}),
    "nested3": ("nest0", None),
}
#: what a finished run must show, per workload: node name -> how many times it ran (top flow only)
EXPECTED: dict[str, dict[str, int]] = {
    "chain100": {f"T{i}": 1 for i in range(100)},
    "fanout200": {"Start": 1, "fan200": 1, "Join": 1},
    "foreach1000": {"Work": 1000},
    "nested3": {"T0": 1, "nest1": 1, "T6": 1},
}
RUN_TIMEOUT_S = 300
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
READY_TIMEOUT_S = 60


def with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def db_of(url: str) -> int:
    path = urlsplit(url).path.strip("/")
    return int(path) if path else 0


def flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


class Worker:
    """A worker in a subprocess of its own process group, logging to a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise SystemExit(f"worker {self.name} exited with {self.proc.returncode}:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def cpu(self) -> float:
        """CPU seconds used so far by the worker's process group (the parent and its pool)."""
        if self.proc is None:
            return 0.0
        total = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    fields = handle.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.proc.pid:  # field 5, the process group (the worker is its leader)
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / CLOCK_TICKS

    def stop(self) -> None:
        if self.proc is None:
            return
        for signum, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
            if self.proc.poll() is not None and signum == signal.SIGTERM:
                break
            try:
                os.killpg(self.proc.pid, signum)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        try:  # pool processes that outlived their parent
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def wait_ready(app: Any, hostname: str, worker: Worker) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        worker.check_alive()
        if app.control.ping(destination=[hostname], timeout=0.5):
            return
    raise SystemExit(f"worker {worker.name} did not answer a ping within {READY_TIMEOUT_S} s:\n{worker.tail()}")


# --- the two systems ------------------------------------------------------------------------


class SelflowSide:
    def __init__(self, broker: str, log_dir: Path, tag: str):
        from selflow.api import _compile
        from selflow.runtime.celery_app import install
        from selflow.runtime.celery_config import make_app
        from selflow.runtime.redis_store import RedisStore

        self.hostname = f"selflow-bench-{tag}@bench"
        env = dict(os.environ)
        env.pop("SELFLOW_BROKER_URL", None)
        env.pop("SELFLOW_RESULT_BACKEND", None)
        self.worker = Worker("selflow", [sys.executable, "-m", "selflow", "worker", CONFIG, "--broker", broker,
                                         "-c", "2", "-P", "prefork", "--hostname", self.hostname,
                                         "--loglevel", "WARNING"], env, log_dir)
        self.tables = _compile(CONFIG)
        self.app = make_app(broker, store_url=broker)
        self.celery = install(self.app, self.tables, RedisStore.from_url(broker))

    def run(self, workload: str) -> float:
        flow, args = FLOWS[workload]
        runtime, store = self.celery.runtime, self.celery.store
        started = time.perf_counter()
        flow_id = runtime.start_flow(flow, args)
        state = store.wait_for_end(flow_id, RUN_TIMEOUT_S)
        elapsed = time.perf_counter() - started
        check_state(workload, state)
        return elapsed


class CanvasSide:
    def __init__(self, broker: str, log_dir: Path, tag: str):
        os.environ["BENCH_CANVAS_BROKER"] = broker
        from benchmarks import canvas_tasks

        self.module = canvas_tasks
        self.app = canvas_tasks.app
        self.hostname = f"canvas-bench-{tag}@bench"
        env = dict(os.environ)
        self.worker = Worker("canvas", [sys.executable, "-m", "celery", "-A", "benchmarks.canvas_tasks", "worker",
                                        "-c", "2", "-P", "prefork", "--hostname", self.hostname,
                                        "--loglevel", "WARNING"], env, log_dir)

    def run(self, workload: str) -> float:
        signature = self.module.WORKLOADS[workload]()
        started = time.perf_counter()
        result = signature.apply_async()
        value = result.get(timeout=RUN_TIMEOUT_S)
        elapsed = time.perf_counter() - started
        if workload == "foreach1000" and len(value) != 1000:
            raise SystemExit(f"canvas {workload}: {len(value)} results, not 1000")
        return elapsed


def check_state(workload: str, state: Any) -> None:
    if state is None or state.status != "success":
        raise SystemExit(f"selflow {workload} did not succeed: {state and state.status}")
    counts = {name: len(ids) for name, ids in state.finished.items()}
    if counts != EXPECTED[workload]:
        raise SystemExit(f"selflow {workload} finished {counts}, expected {EXPECTED[workload]}")


# --- embedded -------------------------------------------------------------------------------


def embedded_runs(workloads: list[str], repeat: int) -> dict[str, list[float]]:
    from selflow.api import _compile
    from selflow.runtime.embedded import EmbeddedRunner

    tables = _compile(CONFIG)
    times: dict[str, list[float]] = {}
    for workload in workloads:
        flow, args = FLOWS[workload]
        EmbeddedRunner(tables).run_flow(flow, args)  # warm-up: imports, caches
        for _ in range(repeat):
            started = time.perf_counter()
            state = EmbeddedRunner(tables).run_flow(flow, args)
            times.setdefault(workload, []).append(time.perf_counter() - started)
            check_state(workload, state)
    return times


def cli_chain_runs(repeat: int) -> list[float]:
    """``python -m selflow run-flow benchmarks/config --flow chain100`` in a fresh process, start-up
    included. ``python -m`` from the repository root runs this checkout's selflow, whatever the
    ``selflow`` script on PATH would import; the two start the same way."""
    argv = [sys.executable, "-m", "selflow", "run-flow", CONFIG, "--flow", "chain100"]
    env = {k: v for k, v in os.environ.items() if k not in ("SELFLOW_BROKER_URL", "SELFLOW_RESULT_BACKEND")}
    subprocess.run(argv, cwd=ROOT, env=env, check=True, capture_output=True)  # warm the file cache
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


# --- report ---------------------------------------------------------------------------------


def fmt(times: list[float] | None) -> str:
    if not times:
        return "-"
    return f"{statistics.median(times):.3f} ({min(times):.3f}-{max(times):.3f})"


def ratio(a: list[float] | None, b: list[float] | None) -> str:
    if not a or not b:
        return "-"
    return f"{statistics.median(a) / statistics.median(b):.2f}x"


def print_cpu_table(cpu: dict[str, dict[str, list[tuple[float, float]]]], workloads: list[str]) -> None:
    print()
    print("CPU seconds per run, median: worker processes + this process (the client)")
    print()
    print("| workload | canvas worker | canvas client | selflow worker | selflow client "
          "| worker CPU selflow / canvas |")
    print("|---|---|---|---|---|---|")
    for workload in workloads:
        cells = []
        medians = {}
        for side in ("canvas", "selflow"):
            runs = cpu.get(side, {}).get(workload)
            if not runs:
                cells += ["-", "-"]
                continue
            medians[side] = statistics.median(r[0] for r in runs)
            cells += [f"{medians[side]:.2f}", f"{statistics.median(r[1] for r in runs):.2f}"]
        share = f"{medians['selflow'] / medians['canvas']:.2f}x" if len(medians) == 2 and medians["canvas"] else "-"
        print(f"| {workload} | {' | '.join(cells)} | {share} |")


def print_table(results: dict[str, dict[str, list[float]]], workloads: list[str], cli: list[float] | None,
                repeat: int) -> None:
    print()
    print(f"seconds, median (min-max) of {repeat} runs; ratio = selflow median / canvas median")
    print()
    print("| workload | canvas (Redis, 2 procs) | selflow (Redis, 2 procs) | selflow / canvas | selflow embedded |")
    print("|---|---|---|---|---|")
    for workload in workloads:
        canvas = results["canvas"].get(workload)
        selflow = results["selflow"].get(workload)
        print(f"| {workload} | {fmt(canvas)} | {fmt(selflow)} | {ratio(selflow, canvas)} | "
              f"{fmt(results['embedded'].get(workload))} |")
    if cli:
        print()
        print(f"`python -m selflow run-flow {CONFIG} --flow chain100` (embedded, start-up included): {fmt(cli)} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per workload and system [5]")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/11",
                        help="selflow's Redis (broker and store); canvas uses the next database "
                             "[redis://127.0.0.1:6379/11]. Both databases are flushed.")
    parser.add_argument("--workloads", default=",".join(FLOWS),
                        help=f"comma-separated subset of {','.join(FLOWS)}")
    parser.add_argument("--systems", default="canvas,selflow,embedded",
                        help="comma-separated subset of canvas,selflow,embedded [all]")
    parser.add_argument("--json", metavar="FILE", help="also write every timing to FILE as JSON")
    options = parser.parse_args(argv)
    workloads = [w.strip() for w in options.workloads.split(",") if w.strip()]
    unknown = sorted(set(workloads) - set(FLOWS))
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}")
    systems = {s.strip() for s in options.systems.split(",") if s.strip()}
    os.chdir(ROOT)

    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
    results: dict[str, dict[str, list[float]]] = {"canvas": {}, "selflow": {}, "embedded": {}}
    cpu: dict[str, dict[str, list[tuple[float, float]]]] = {"canvas": {}, "selflow": {}}
    selflow_url = options.broker
    canvas_url = with_db(selflow_url, db_of(selflow_url) + 1)
    sides: dict[str, Any] = {}
    log_dir = Path(tempfile.mkdtemp(prefix="selflow-bench-"))
    tag = uuid.uuid4().hex[:6]
    try:
        if systems & {"canvas", "selflow"}:
            flush(selflow_url)
            flush(canvas_url)
            if "canvas" in systems:
                sides["canvas"] = CanvasSide(canvas_url, log_dir, tag)
            if "selflow" in systems:
                sides["selflow"] = SelflowSide(selflow_url, log_dir, tag)
            for side in sides.values():
                side.worker.start()
            for side in sides.values():
                wait_ready(side.app, side.hostname, side.worker)
            print(f"workers ready (logs in {log_dir}); warming up", flush=True)
            for workload in workloads:
                for side in sides.values():
                    side.run(workload)
            for index in range(options.repeat):
                order = list(sides) if index % 2 == 0 else list(reversed(sides))
                for workload in workloads:
                    for name in order:
                        side = sides[name]
                        worker_cpu, client_cpu = side.worker.cpu(), time.process_time()
                        elapsed = side.run(workload)
                        time.sleep(0.05)  # let the worker finish its bookkeeping (acks) before the CPU read
                        worker_cpu, client_cpu = side.worker.cpu() - worker_cpu, time.process_time() - client_cpu
                        results[name].setdefault(workload, []).append(elapsed)
                        cpu[name].setdefault(workload, []).append((worker_cpu, client_cpu))
                        print(f"  run {index + 1}/{options.repeat} {workload:12} {name:8} {elapsed:.3f} s  "
                              f"(CPU: worker {worker_cpu:.2f} s, client {client_cpu:.2f} s)", flush=True)
        cli = None
        if "embedded" in systems:
            print("embedded runs", flush=True)
            results["embedded"] = embedded_runs(workloads, options.repeat)
            if "chain100" in workloads:
                cli = cli_chain_runs(options.repeat)
    finally:
        for side in sides.values():
            side.worker.stop()
        if sides:
            flush(selflow_url)
            flush(canvas_url)
    print_table(results, workloads, cli, options.repeat)
    if cpu["canvas"] or cpu["selflow"]:
        print_cpu_table(cpu, workloads)
    if options.json:
        Path(options.json).write_text(json.dumps({**results, "cli_chain100": cli, "cpu": cpu}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
