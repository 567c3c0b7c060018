"""CPU time of the dispatcher engine per event, on flows of 10 to 10,000 nodes.

    python benchmarks/engine_cost.py [--sizes 10,100,1000,10000] [--trials 5]

From the repository root. Two generated shapes, each built directly as ``FlowTable`` objects (the
compiler is not timed, and compiling a 10,000-edge YAML takes about half a minute):

* ``chain``: (start) -> T0 -> T1 -> ... -> T<n-1>; n tasks, n edges. One event per task.
* ``foreach``: (start) -> Split -foreach range(n)-> Work; one Split, then n Work nodes running at
  once, reporting one by one. One event per node.

Each event is one ``engine.step(tables, state, [event], context)`` call, timed with
``time.process_time()`` around the call only; results come from a dict. A trial runs the flow to
its end (repeated until it has seen at least 20,000 events, so small flows are timed as long as
big ones) and gives the mean CPU per event, all events included; the table shows the median of
``--trials`` trials, the same for the first and the last tenth of the events of a flow (does an
event late in a big flow cost more than an early one?), and the ratio to the smallest size. The
tenths leave out the flow's first and last event, which are O(n) by nature and happen once per
flow: the foreach's Split event starts n nodes, and the final event builds the flow's result,
which lists every node.

The last column is not the engine: it is what the runtime pays per event to keep the state in a
store, one JSON encode and decode of the whole ``FlowState`` (``to_dict``/``from_dict``), timed
the same way at the middle of the flow. It grows with the state, which holds every finished and
active node id.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from selflow.codegen.model import ForeachSpec, ImportRef, TaskSpec  # noqa: E402
from selflow.dispatcher.engine import StepContext, step  # noqa: E402
from selflow.dispatcher.records import RUNNING, FlowState, NodeSucceeded, StartTask  # noqa: E402
from selflow.tables import EdgeTable, FlowTable, SystemTables  # noqa: E402

NOOP = ImportRef("benchmarks.bench_tasks", "noop")
MIN_EVENTS = 20_000


def chain_tables(size: int) -> SystemTables:
    names = [f"T{i}" for i in range(size)]
    edges = [EdgeTable(id="e0", index=0, from_nodes=(), to_nodes=(names[0],))]
    edges += [EdgeTable(id=f"e{i + 1}", index=i + 1, from_nodes=(names[i],), to_nodes=(names[i + 1],))
              for i in range(size - 1)]
    return SystemTables(selflow_version="bench", input_hash="bench",
                        tasks={name: TaskSpec(name=name, ref=NOOP) for name in names},
                        flows={"chain": FlowTable(name="chain", edges=tuple(edges))})


def foreach_tables() -> SystemTables:
    edges = (
        EdgeTable(id="e0", index=0, from_nodes=(), to_nodes=("Split",)),
        EdgeTable(id="e1", index=1, from_nodes=("Split",), to_nodes=("Work",),
                  foreach=ForeachSpec(ImportRef("benchmarks.bench_tasks", "items"))),
    )
    return SystemTables(selflow_version="bench", input_hash="bench",
                        tasks={name: TaskSpec(name=name, ref=NOOP) for name in ("Split", "Work")},
                        flows={"foreach": FlowTable(name="foreach", edges=edges)})


class Results:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def result(self, node_id: str) -> Any:
        return self.values.get(node_id)


def run_flow(tables: SystemTables, flow: str, node_args: Any, middle: int) -> tuple[list[float], float]:
    """Run ``flow`` to its end, one event per step: the CPU time of each step, and of one JSON round
    trip of the state after ``middle`` events."""
    context = StepContext(results=Results())
    counter = iter(range(10**9))
    context.new_id = lambda: f"{next(counter):032x}"  # as long as the runtime's uuid4 hex ids
    state = FlowState.new("flow-1", flow, node_args)
    state, actions = step(tables, state, [], context)
    pending = [action.node_id for action in actions if isinstance(action, StartTask)]
    times: list[float] = []
    round_trip = 0.0
    clock = time.process_time
    while pending and state.status == RUNNING:
        event = [NodeSucceeded(pending.pop())]
        started = clock()
        state, actions = step(tables, state, event, context)
        times.append(clock() - started)
        pending.extend(action.node_id for action in actions if isinstance(action, StartTask))
        if len(times) == middle:
            started = clock()
            FlowState.from_dict(json.loads(json.dumps(state.to_dict())))
            round_trip = clock() - started
    assert state.status == "success", state.status
    return times, round_trip


def measure(shape: str, size: int, trials: int) -> dict[str, float]:
    if shape == "chain":
        tables, flow, args = chain_tables(size), "chain", None
    else:
        tables, flow, args = foreach_tables(), "foreach", {"count": size}
    middle = max(1, size // 2)
    run_flow(tables, flow, args, middle)  # warm-up: imports, cached indexes of the tables
    means, firsts, lasts, trips = [], [], [], []
    for _ in range(trials):
        events: list[float] = []
        firsts_here, lasts_here, trips_here = [], [], []
        while len(events) < MIN_EVENTS:
            times, trip = run_flow(tables, flow, args, middle)
            inner = times[1:-1]  # without the first event (a fan-out starts n nodes) and the last (the
            tenth = max(1, len(inner) // 10)  # flow's result lists every node): each is O(n), once per flow
            firsts_here.extend(inner[:tenth])
            lasts_here.extend(inner[-tenth:])
            trips_here.append(trip)
            events.extend(times)
        means.append(statistics.fmean(events))
        firsts.append(statistics.fmean(firsts_here))
        lasts.append(statistics.fmean(lasts_here))
        trips.append(statistics.median(trips_here))
    return {"per_event": statistics.median(means), "first": statistics.median(firsts),
            "last": statistics.median(lasts), "round_trip": statistics.median(trips)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000,10000", help="flow sizes [10,100,1000,10000]")
    parser.add_argument("--trials", type=int, default=5, help="trials per size; the median is shown [5]")
    options = parser.parse_args(argv)
    sizes = [int(size) for size in options.sizes.split(",")]
    print("engine.step CPU per event, microseconds (median of trials); ratio to the smallest size")
    print()
    print("| shape | nodes | per event | first 10% | last 10% | vs smallest | state JSON round trip (runtime) |")
    print("|---|---|---|---|---|---|---|")
    for shape in ("chain", "foreach"):
        base = None
        for size in sizes:
            cost = measure(shape, size, options.trials)
            base = base or cost["per_event"]
            print(f"| {shape} | {size:,} | {cost['per_event'] * 1e6:.1f} | {cost['first'] * 1e6:.1f} | "
                  f"{cost['last'] * 1e6:.1f} | {cost['per_event'] / base:.2f}x | "
                  f"{cost['round_trip'] * 1e6:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
