"""Run the benchmark workloads on selflow and on plain Celery canvas, side by side, and print medians.

    python benchmarks/run.py [--repeat N] [--broker redis://127.0.0.1:6379/11] [--systems ...]

From the repository root. Three systems run on Redis, each with its own worker:

* ``canvas``: plain Celery canvas (``benchmarks/canvas_tasks.py``);
* ``selflow``: ``benchmarks/config``;
* ``storage`` (selflow+storage): the same configuration with a Redis storage on every task
  (``benchmarks/config_storage/nodes.yml`` with ``benchmarks/config/flows``), so every task run
  also writes one record to the storage's Redis database.

What it does:

1. Flushes three Redis databases of the broker's server, numbered from the one ``--broker`` names
   (N, 11 by default): N is selflow's broker and state store, N+1 the canvas app's broker and
   result backend, N-1 selflow+storage's broker, state store and storage (the storage's records
   are the keys ``bench:<task id>``; ``--storage-url`` puts them in a database of their own, also
   flushed). Do not point it at databases that hold anything you want to keep: the test suites and
   the demo deployment use databases 0-9 and 13-15 of the same server, which is why the storage
   shares database 10 by default instead of taking a fourth one.
2. Starts one worker of two prefork processes (``-c 2``) per system, at log level WARNING:
   ``python -m celery -A benchmarks.canvas_tasks worker``, ``python -m selflow worker
   benchmarks/config`` and ``python -m selflow worker -n benchmarks/config_storage/nodes.yml -f
   benchmarks/config/flows``.
3. Runs every workload once on each system to warm up, then ``--repeat`` times, alternating the
   systems (which goes first rotates). Each run is timed on this process's wall clock from the
   start call to the moment the outcome is known here (selflow: ``wait_for_end``; canvas:
   ``AsyncResult.get``). After each selflow+storage run (outside the timing) it checks that the
   storage gained exactly one record per task the flow ran, and once that the records hold what
   the tasks returned.
4. Runs each workload embedded (``EmbeddedRunner``, in this process), and with ``storage`` among
   the systems, alternating with it, embedded with the storage configuration (its storage on the
   same Redis; records checked as above); and times ``python -m selflow run-flow benchmarks/config
   --flow chain100`` in a fresh process, start-up included.
5. Prints one table: medians, min-max, and the ratios of the medians (selflow / canvas,
   selflow+storage / selflow, ...); and a second one with the CPU time each run cost: the
   worker's processes (parent and pool, read from /proc, 10 ms ticks) and this process (the
   client: publishing, waiting).

``--systems canvas,selflow`` runs the comparison without the storage (two workers, databases N
and N+1 only).

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
#: the selflow+storage system: CONFIG's tasks with a Redis storage each, and CONFIG's flows
STORAGE_NODES = "benchmarks/config_storage/nodes.yml"
STORAGE_FLOWS = "benchmarks/config/flows"
#: the storage's key prefix in STORAGE_NODES (``key_prefix``)
STORAGE_PREFIX = b"bench:"
#: the systems on Redis, in their column order
SYSTEMS = ("canvas", "selflow", "storage")
LABELS = {"canvas": "canvas", "selflow": "selflow", "storage": "selflow+storage", "embedded": "embedded"}

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
#: records a run keeps in the storage: one per task run, in every flow and sub-flow
STORED: dict[str, int] = {"chain100": 100, "fanout200": 202, "foreach1000": 1000, "nested3": 7}
RUN_TIMEOUT_S = 300
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
READY_TIMEOUT_S = 60


def with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def db_of(url: str) -> int:
    path = urlsplit(url).path.strip("/")
    return int(path) if path else 0


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


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
    name = "selflow"
    #: the configuration: what ``selflow worker`` is given, and what this process compiles
    config_args: list[str] = [CONFIG]

    def __init__(self, broker: str, log_dir: Path, tag: str):
        from selflow.runtime.celery_app import install
        from selflow.runtime.celery_config import make_app
        from selflow.runtime.redis_store import RedisStore

        self.hostname = f"{self.name}-bench-{tag}@bench"
        env = dict(os.environ)
        env.pop("SELFLOW_BROKER_URL", None)
        env.pop("SELFLOW_RESULT_BACKEND", None)
        self.worker = Worker(self.name, [sys.executable, "-m", "selflow", "worker", *self.config_args,
                                         "--broker", broker, "-c", "2", "-P", "prefork", "--hostname", self.hostname,
                                         "--loglevel", "WARNING"], env, log_dir)
        self.tables = self.compile()
        self.last_state: Any = None
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
        self.last_state = state
        return elapsed

    def compile(self) -> Any:
        from selflow.api import _compile

        return _compile(CONFIG)

    def after_run(self, workload: str) -> None:
        """Checks made after a run, outside its timing and its CPU reading."""


class StorageRecords:
    """The records of the storage of STORAGE_NODES (keys ``bench:<task id>``), and the checks of
    what a run left there."""

    def __init__(self, url: str):
        import redis

        self.url = url
        self.client = redis.Redis.from_url(url)
        self.count = self.count_records()
        self.content_checked: set[str] = set()

    def count_records(self) -> int:
        return sum(1 for _ in self.client.scan_iter(match=STORAGE_PREFIX + b"*", count=1000))

    def check_run(self, label: str, workload: str, state: Any, tasks: Any) -> None:
        """One new record per task run; the first time per workload, the records of the top flow's
        tasks hold what they returned (None) under the right flow and task names."""
        records = self.count_records()
        if records - self.count != STORED[workload]:
            raise SystemExit(f"{label} {workload}: the storage gained {records - self.count} records, "
                             f"expected {STORED[workload]} (one per task run)")
        self.count = records
        if workload in self.content_checked:
            return
        for name, ids in state.finished.items():
            if name not in tasks:
                continue  # a sub-flow
            for node_id in ids:
                raw = self.client.get(STORAGE_PREFIX + node_id.encode())
                record = json.loads(raw) if raw is not None else None
                if (not isinstance(record, dict) or record.get("task_id") != node_id or record.get("task_name") != name
                        or record.get("flow_name") != state.flow_name or record.get("result", 0) is not None):
                    raise SystemExit(f"{label} {workload}: bad storage record for {name} {node_id}: {raw!r}")
        self.content_checked.add(workload)


def compile_storage_config() -> Any:
    from selflow.codegen import load_system
    from selflow.codegen.compiled import compile_tables

    tables = compile_tables(load_system(nodes=STORAGE_NODES, flows=[STORAGE_FLOWS]))
    check_same_tasks(tables)
    return tables


class StorageSide(SelflowSide):
    """selflow with a Redis storage on every task; the storage's database is ``records.url``
    (``BENCH_STORAGE_URL``, which the configuration reads)."""

    name = "storage"
    config_args = ["-n", STORAGE_NODES, "-f", STORAGE_FLOWS]

    def __init__(self, broker: str, records: StorageRecords, log_dir: Path, tag: str):
        os.environ["BENCH_STORAGE_URL"] = records.url  # the worker's environment is a copy of this one
        super().__init__(broker, log_dir, tag)
        self.records = records

    def compile(self) -> Any:
        return compile_storage_config()

    def after_run(self, workload: str) -> None:
        self.records.check_run("selflow+storage", workload, self.last_state, self.tables.tasks)


def check_same_tasks(tables: Any) -> None:
    """The storage configuration must be benchmarks/config plus a storage per task, nothing else."""
    from selflow.api import _compile

    plain = _compile(CONFIG)
    if set(plain.tasks) != set(tables.tasks) or set(plain.flows) != set(tables.flows):
        raise SystemExit(f"{STORAGE_NODES} and {CONFIG} do not have the same tasks and flows")
    for name, spec in tables.tasks.items():
        if spec.storage is None or spec.ref != plain.tasks[name].ref:
            raise SystemExit(f"{STORAGE_NODES}: task {name} has no storage or runs other code than in {CONFIG}")


class CanvasSide:
    name = "canvas"

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

    def after_run(self, workload: str) -> None:
        pass


def check_state(workload: str, state: Any) -> None:
    if state is None or state.status != "success":
        raise SystemExit(f"selflow {workload} did not succeed: {state and state.status}")
    counts = {name: len(ids) for name, ids in state.finished.items()}
    if counts != EXPECTED[workload]:
        raise SystemExit(f"selflow {workload} finished {counts}, expected {EXPECTED[workload]}")


# --- embedded -------------------------------------------------------------------------------


def embedded_runs(workloads: list[str], repeat: int,
                  records: StorageRecords | None = None) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Times of ``EmbeddedRunner(tables).run_flow`` (a fresh runner each time, in the timing) for
    benchmarks/config and, with ``records``, alternating with it, for the storage configuration
    (the runner's storage connects to Redis on its first store, inside the timing)."""
    from selflow.api import _compile
    from selflow.runtime.embedded import EmbeddedRunner

    configs = {"embedded": _compile(CONFIG)}
    if records is not None:
        configs["embedded+storage"] = compile_storage_config()
    times: dict[str, dict[str, list[float]]] = {name: {} for name in configs}
    for workload in workloads:
        flow, args = FLOWS[workload]
        for name, tables in configs.items():
            state = EmbeddedRunner(tables).run_flow(flow, args)  # warm-up: imports, caches
            if name == "embedded+storage":
                records.check_run(name, workload, state, tables.tasks)  # type: ignore[union-attr]
        for index in range(repeat):
            names = list(configs) if index % 2 == 0 else list(reversed(configs))
            for name in names:
                tables = configs[name]
                started = time.perf_counter()
                state = EmbeddedRunner(tables).run_flow(flow, args)
                times[name].setdefault(workload, []).append(time.perf_counter() - started)
                check_state(workload, state)
                if name == "embedded+storage":
                    records.check_run(name, workload, state, tables.tasks)  # type: ignore[union-attr]
    return times["embedded"], times.get("embedded+storage", {})


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
    sides = [side for side in SYSTEMS if cpu.get(side)]
    header = " | ".join(f"{LABELS[side]} worker | {LABELS[side]} client" for side in sides)
    print(f"| workload | {header} | worker CPU selflow / canvas | worker CPU selflow+storage / selflow |")
    print("|---|" + "---|---|" * len(sides) + "---|---|")
    for workload in workloads:
        cells = []
        medians = {}
        for side in sides:
            runs = cpu[side].get(workload)
            if not runs:
                cells += ["-", "-"]
                continue
            medians[side] = statistics.median(r[0] for r in runs)
            cells += [f"{medians[side]:.2f}", f"{statistics.median(r[1] for r in runs):.2f}"]

        def share(a: str, b: str) -> str:
            return f"{medians[a] / medians[b]:.2f}x" if medians.get(a) is not None and medians.get(b) else "-"

        print(f"| {workload} | {' | '.join(cells)} | {share('selflow', 'canvas')} | {share('storage', 'selflow')} |")


def print_table(results: dict[str, dict[str, list[float]]], workloads: list[str], cli: list[float] | None,
                repeat: int) -> None:
    print()
    print(f"seconds, median (min-max) of {repeat} runs; ratios of the medians")
    print()
    print("| workload | canvas (Redis, 2 procs) | selflow (Redis, 2 procs) | selflow+storage (Redis, 2 procs) "
          "| selflow / canvas | selflow+storage / selflow | selflow+storage / canvas | selflow embedded "
          "| selflow+storage embedded | embedded: storage / none |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for workload in workloads:
        canvas = results["canvas"].get(workload)
        selflow = results["selflow"].get(workload)
        storage = results["storage"].get(workload)
        embedded, embedded_storage = results["embedded"].get(workload), results["embedded_storage"].get(workload)
        print(f"| {workload} | {fmt(canvas)} | {fmt(selflow)} | {fmt(storage)} | {ratio(selflow, canvas)} | "
              f"{ratio(storage, selflow)} | {ratio(storage, canvas)} | {fmt(embedded)} | {fmt(embedded_storage)} | "
              f"{ratio(embedded_storage, embedded)} |")
    if cli:
        print()
        print(f"`python -m selflow run-flow {CONFIG} --flow chain100` (embedded, start-up included): {fmt(cli)} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per workload and system [5]")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/11",
                        help="selflow's Redis (broker and store), database N; canvas uses N+1, selflow+storage "
                             "N-1 (broker, store and storage) [redis://127.0.0.1:6379/11]. All are flushed.")
    parser.add_argument("--storage-url", metavar="URL",
                        help="a Redis database of its own for selflow+storage's storage (flushed) [database N-1, "
                             "shared with selflow+storage's broker; records under bench:]")
    parser.add_argument("--workloads", default=",".join(FLOWS),
                        help=f"comma-separated subset of {','.join(FLOWS)}")
    parser.add_argument("--systems", default="canvas,selflow,storage,embedded",
                        help="comma-separated subset of canvas,selflow,storage (selflow+storage),embedded [all]")
    parser.add_argument("--json", metavar="FILE", help="also write every timing to FILE as JSON")
    options = parser.parse_args(argv)
    workloads = [w.strip() for w in options.workloads.split(",") if w.strip()]
    unknown = sorted(set(workloads) - set(FLOWS))
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}")
    systems = {s.strip() for s in options.systems.split(",") if s.strip()}
    unknown = sorted(systems - {*SYSTEMS, "embedded"})
    if unknown:
        parser.error(f"unknown system(s) {', '.join(unknown)}")
    os.chdir(ROOT)

    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
    results: dict[str, dict[str, list[float]]] = {"canvas": {}, "selflow": {}, "storage": {}, "embedded": {},
                                                  "embedded_storage": {}}
    cpu: dict[str, dict[str, list[tuple[float, float]]]] = {"canvas": {}, "selflow": {}, "storage": {}}
    selflow_url = options.broker
    base = db_of(selflow_url)
    canvas_url = with_db(selflow_url, base + 1)
    if "storage" in systems and base < 1:
        parser.error("--broker must name database 1 or above: selflow+storage uses the one before it")
    storage_side_url = with_db(selflow_url, base - 1)
    storage_url = options.storage_url or storage_side_url
    databases = [selflow_url, canvas_url, *((storage_side_url, storage_url) if "storage" in systems else ())]
    databases = list(dict.fromkeys(databases))
    sides: dict[str, Any] = {}
    records: StorageRecords | None = None
    log_dir = Path(tempfile.mkdtemp(prefix="selflow-bench-"))
    tag = uuid.uuid4().hex[:6]
    try:
        if systems & set(SYSTEMS):
            for url in databases:
                flush(url)
            if "canvas" in systems:
                sides["canvas"] = CanvasSide(canvas_url, log_dir, tag)
            if "selflow" in systems:
                sides["selflow"] = SelflowSide(selflow_url, log_dir, tag)
            if "storage" in systems:
                records = StorageRecords(storage_url)
                sides["storage"] = StorageSide(storage_side_url, records, log_dir, tag)
            for side in sides.values():
                side.worker.start()
            for side in sides.values():
                wait_ready(side.app, side.hostname, side.worker)
            print(f"workers ready (logs in {log_dir}); warming up", flush=True)
            for workload in workloads:
                for side in sides.values():
                    side.run(workload)
                    side.after_run(workload)
            for index in range(options.repeat):
                names = list(sides)
                order = names[index % len(names):] + names[:index % len(names)]  # who goes first rotates
                for workload in workloads:
                    for name in order:
                        side = sides[name]
                        worker_cpu, client_cpu = side.worker.cpu(), time.process_time()
                        elapsed = side.run(workload)
                        time.sleep(0.05)  # let the worker finish its bookkeeping (acks) before the CPU read
                        worker_cpu, client_cpu = side.worker.cpu() - worker_cpu, time.process_time() - client_cpu
                        side.after_run(workload)
                        results[name].setdefault(workload, []).append(elapsed)
                        cpu[name].setdefault(workload, []).append((worker_cpu, client_cpu))
                        print(f"  run {index + 1}/{options.repeat} {workload:12} {LABELS[name]:15} {elapsed:.3f} s  "
                              f"(CPU: worker {worker_cpu:.2f} s, client {client_cpu:.2f} s)", flush=True)
        if records is not None:
            print(f"selflow+storage: {records.count} records in the storage ({redact_url(storage_url)}), "
                  f"one per task run", flush=True)
        cli = None
        if "embedded" in systems:
            print("embedded runs", flush=True)
            embedded_records = None
            if "storage" in systems:
                if records is None:
                    flush(storage_url)
                    records = StorageRecords(storage_url)
                os.environ["BENCH_STORAGE_URL"] = storage_url
                embedded_records = records
            results["embedded"], results["embedded_storage"] = embedded_runs(workloads, options.repeat,
                                                                             embedded_records)
            if "chain100" in workloads:
                cli = cli_chain_runs(options.repeat)
    finally:
        for side in sides.values():
            side.worker.stop()
        if sides or records is not None:
            for url in databases:
                flush(url)
    print_table(results, workloads, cli, options.repeat)
    if any(cpu.values()):
        print_cpu_table(cpu, workloads)
    if options.json:
        Path(options.json).write_text(json.dumps({**results, "cli_chain100": cli, "cpu": cpu}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
