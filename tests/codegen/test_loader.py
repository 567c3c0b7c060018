"""Loading layouts and the loader's Selinon-compatible conveniences.

Layouts: a directory (``nodes.yaml`` or ``nodes.yml`` + every YAML file under ``flows/``), Selinon's
``-n``/``-f`` style, the same file as both, and a single file holding every section. Then: ``x-``
keys for anchors and merge keys, ``{VAR}`` environment expansion, and the Selinon bugs selflow fixes
on purpose (sampling without args, a storage without configuration, ``fallback: true``,
``eager_failures: true``), the input hash, and a missing path.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from selflow.codegen import load_system
from selflow.codegen.model import ImportRef, SamplingSpec
from selflow.errors import ConfigError

NODES = """\
tasks:
  - name: Fetch
    import: acme.tasks
  - name: Parse
    import: acme.tasks
  - name: Store
    import: acme.tasks
flows:
  - main
  - side
"""

MAIN_FLOW = """\
flow-definitions:
  - name: main
    edges:
      - from:
        to: Fetch
      - from: Fetch
        to: [Parse, side]
"""

SIDE_FLOW = """\
flow-definitions:
  - name: side
    edges:
      - from:
        to: Store
"""

#: a file whose contents would fail to load, for places the loader must skip
BROKEN = "flow-definitions: [this is: not valid\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def single_file(tmp_path: Path, body: str, name: str = "config.yml") -> Path:
    """A single-file configuration: NODES + MAIN_FLOW + SIDE_FLOW's definitions, plus ``body``."""
    definitions = MAIN_FLOW + SIDE_FLOW.replace("flow-definitions:\n", "")
    return write(tmp_path / name, NODES + definitions + textwrap.dedent(body))


def flow_names(system) -> list[str]:
    return [flow.name for flow in system.flows]


def messages(error: ConfigError) -> list[str]:
    return [str(issue) for issue in error.issues]


# --- layouts ----------------------------------------------------------------------------


def test_directory_with_nodes_yaml_and_nested_flow_dirs(tmp_path: Path) -> None:
    write(tmp_path / "nodes.yaml", NODES)
    write(tmp_path / "flows" / "main.yaml", MAIN_FLOW)
    write(tmp_path / "flows" / "team" / "nested" / "side.yml", SIDE_FLOW)
    # hidden files and folders, and files that are not YAML, are skipped
    write(tmp_path / "flows" / ".draft.yml", BROKEN)
    write(tmp_path / "flows" / ".git" / "junk.yaml", BROKEN)
    write(tmp_path / "flows" / "README.md", BROKEN)
    write(tmp_path / "flows" / "main.yaml.orig", BROKEN)

    system = load_system([str(tmp_path)])

    assert flow_names(system) == ["main", "side"]
    assert [task.name for task in system.tasks] == ["Fetch", "Parse", "Store"]
    assert system.flow("main").edges[1].to_nodes == ("Parse", "side")


def test_directory_with_nodes_yml(tmp_path: Path) -> None:
    write(tmp_path / "nodes.yml", NODES)
    write(tmp_path / "flows" / "all.yml", MAIN_FLOW + SIDE_FLOW.replace("flow-definitions:\n", ""))

    assert flow_names(load_system([str(tmp_path)])) == ["main", "side"]


def test_directory_holding_both_nodes_files_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "nodes.yml", NODES)
    write(tmp_path / "nodes.yaml", NODES)
    write(tmp_path / "flows" / "all.yml", MAIN_FLOW + SIDE_FLOW.replace("flow-definitions:\n", ""))

    with pytest.raises(ConfigError) as caught:
        load_system([str(tmp_path)])
    assert any("nodes.yaml and nodes.yml" in line and str(tmp_path) in line for line in messages(caught.value))


def test_directory_without_nodes_file_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "flows" / "main.yml", MAIN_FLOW)

    with pytest.raises(ConfigError) as caught:
        load_system([str(tmp_path)])
    assert any("no nodes.yaml or nodes.yml" in line for line in messages(caught.value))


def test_nodes_and_flows_options_like_selinon_cli(tmp_path: Path) -> None:
    nodes = write(tmp_path / "defs" / "nodes.yml", NODES)
    main = write(tmp_path / "defs" / "main.yml", MAIN_FLOW)
    side_dir = tmp_path / "more"
    write(side_dir / "side.yml", SIDE_FLOW)

    system = load_system(nodes=str(nodes), flows=[str(main), str(side_dir)])

    assert flow_names(system) == ["main", "side"]


def test_a_flow_path_must_hold_flow_definitions(tmp_path: Path) -> None:
    nodes = write(tmp_path / "nodes.yml", NODES)
    write(tmp_path / "main.yml", MAIN_FLOW + SIDE_FLOW.replace("flow-definitions:\n", ""))
    extra = write(tmp_path / "extra.yml", "x-note: nothing here\n")

    with pytest.raises(ConfigError) as caught:
        load_system(nodes=str(nodes), flows=[str(tmp_path / "main.yml"), str(extra)])
    assert messages(caught.value) == [f"{extra}:1:1: a flow file needs a 'flow-definitions' list"]


def test_same_file_as_nodes_and_flows_is_read_once(tmp_path: Path) -> None:
    config = single_file(tmp_path, "")

    as_both = load_system(nodes=str(config), flows=[str(config)])
    as_one = load_system([str(config)])

    # read twice, every flow would be "defined twice"
    assert flow_names(as_both) == ["main", "side"]
    assert as_both.input_hash == as_one.input_hash
    assert as_both == as_one


def test_same_file_named_through_another_path_is_read_once(tmp_path: Path) -> None:
    config = single_file(tmp_path, "")
    other_spelling = tmp_path / "." / ".." / tmp_path.name / config.name

    assert flow_names(load_system([str(config)], flows=[str(other_spelling)])) == ["main", "side"]


def test_single_file_with_every_section(tmp_path: Path) -> None:
    config = single_file(tmp_path, """\
        storages:
          - name: Results
            import: selinon.storages.memory
            classname: InMemoryStorage
            configuration: {echo: false}
        global:
          default_task_queue: work
        """)

    system = load_system([str(config)])

    assert flow_names(system) == ["main", "side"]
    assert system.storage("Results").ref == ImportRef("selflow.storages.memory", "MemoryStorage")
    assert {task.queue for task in system.tasks} == {"work"}


# --- x- keys, anchors and merge keys ----------------------------------------------------------


def test_x_keys_hold_anchors_for_merge_keys(tmp_path: Path) -> None:
    config = write(tmp_path / "config.yml", """\
        x-task-defaults: &defaults
          import: acme.tasks
          max_retry: 3
          queue: slow
        x-notes: any value at all, even [unbalanced

        tasks:
          - name: Fetch
            <<: *defaults
          - name: Parse
            <<: *defaults
            max_retry: 1          # a key given beside the merge wins
        flows: [main]
        flow-definitions:
          - name: main
            x-owner: data team    # x- keys are free at any level
            edges:
              - from:
                to: Fetch
              - from: Fetch
                to: Parse
        """)

    system = load_system([str(config)])

    fetch, parse = system.task("Fetch"), system.task("Parse")
    assert (fetch.ref, fetch.max_retry, fetch.queue) == (ImportRef("acme.tasks", "Fetch"), 3, "slow")
    assert (parse.ref, parse.max_retry, parse.queue) == (ImportRef("acme.tasks", "Parse"), 1, "slow")


def test_unknown_top_level_key_without_x_prefix_is_an_error(tmp_path: Path) -> None:
    config = single_file(tmp_path, "defaults: {}\n")

    with pytest.raises(ConfigError) as caught:
        load_system([str(config)])
    (line,) = messages(caught.value)
    assert "unknown top-level key 'defaults'" in line and "'x-'" in line


# --- environment expansion -----------------------------------------------------------------


def test_environment_variables_expand_in_queues(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFLOW_TEST_ENV", "staging")
    config = single_file(tmp_path, """\
        global:
          default_task_queue: '{SELFLOW_TEST_ENV}_tasks'
          default_dispatcher_queue: '{SELFLOW_TEST_ENV}_dispatch'
        """)
    text = config.read_text(encoding="utf-8").replace(
        "  - name: Fetch\n    import: acme.tasks\n",
        "  - name: Fetch\n    import: acme.tasks\n    queue: '{SELFLOW_TEST_ENV}_fetch_v1'\n")
    config.write_text(text, encoding="utf-8")

    system = load_system([str(config)])

    assert system.task("Fetch").queue == "staging_fetch_v1"
    assert system.task("Parse").queue == "staging_tasks"
    assert system.global_.default_dispatcher_queue == "staging_dispatch"
    assert {flow.queue for flow in system.flows} == {"staging_dispatch"}


def test_missing_environment_variable_is_reported_where_used(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SELFLOW_TEST_ENV", raising=False)
    config = single_file(tmp_path, "global:\n  default_dispatcher_queue: '{SELFLOW_TEST_ENV}_dispatch'\n")

    with pytest.raises(ConfigError) as caught:
        load_system([str(config)])
    (issue,) = caught.value.issues
    assert (issue.key_path, issue.line, issue.column) == ("global.default_dispatcher_queue", 23, 29)
    assert "SELFLOW_TEST_ENV is not set" in issue.message


# --- Selinon bugs fixed on purpose -------------------------------------------------------------


def test_sampling_without_args_uses_the_strategy_defaults(tmp_path: Path) -> None:
    config = single_file(tmp_path, "")
    text = config.read_text(encoding="utf-8").replace(
        "  - name: main\n", "  - name: main\n    sampling: {name: constant}\n")
    config.write_text(text, encoding="utf-8")

    flow = load_system([str(config)]).flow("main")

    assert flow.sampling == SamplingSpec(ImportRef("selflow.strategies", "constant"), ())


def test_storage_without_configuration(tmp_path: Path) -> None:
    config = single_file(tmp_path, """\
        storages:
          - name: Results
            import: selinon.storages.memory
            classname: InMemoryStorage
        """)

    storage = load_system([str(config)]).storage("Results")

    assert storage is not None and storage.configuration is None


def test_fallback_true_and_eager_failures_true(tmp_path: Path) -> None:
    config = write(tmp_path / "config.yml", """\
        tasks:
          - name: Fetch
            import: acme.tasks
          - name: Parse
            import: acme.tasks
          - name: Notify
            import: acme.tasks
        flows: [handled, eager]
        flow-definitions:
          - name: handled
            edges:
              - from:
                to: Fetch
            failures:
              - nodes: Fetch
                fallback: true
          - name: eager
            eager_failures: true
            nowait: Notify
            edges:
              - from:
                to: [Fetch, Notify]
              - from: Fetch
                to: Parse
        """)

    system = load_system([str(config)])

    (failure,) = system.flow("handled").failures
    assert failure.nodes == ("Fetch",) and failure.fallback is None
    # every waited-for node fails the flow at once; nowait nodes are never watched
    assert system.flow("eager").eager_failures == frozenset({"Fetch", "Parse"})


# --- input hash and missing paths ---------------------------------------------------------------


def test_input_hash_is_stable_and_follows_the_files(tmp_path: Path) -> None:
    write(tmp_path / "nodes.yml", NODES)
    main = write(tmp_path / "flows" / "main.yml", MAIN_FLOW)
    write(tmp_path / "flows" / "side.yml", SIDE_FLOW)

    first = load_system([str(tmp_path)]).input_hash
    assert len(first) == 64 and first == load_system([str(tmp_path)]).input_hash

    main.write_text(MAIN_FLOW + "# a comment changes the bytes\n", encoding="utf-8")
    second = load_system([str(tmp_path)]).input_hash
    assert second != first

    main.write_text(MAIN_FLOW, encoding="utf-8")
    assert load_system([str(tmp_path)]).input_hash == first


def test_input_hash_ignores_skipped_files(tmp_path: Path) -> None:
    write(tmp_path / "nodes.yml", NODES)
    write(tmp_path / "flows" / "all.yml", MAIN_FLOW + SIDE_FLOW.replace("flow-definitions:\n", ""))
    before = load_system([str(tmp_path)]).input_hash

    write(tmp_path / "flows" / ".scratch.yml", BROKEN)

    assert load_system([str(tmp_path)]).input_hash == before


@pytest.mark.parametrize("how", ["configs", "nodes", "flows"])
def test_missing_path_is_named(tmp_path: Path, how: str) -> None:
    config = single_file(tmp_path, "")
    missing = str(tmp_path / "no-such-dir" / "nodes.yml")
    kwargs = {"configs": [missing]} if how == "configs" else {how: missing if how == "nodes" else [missing]}
    if how == "flows":
        kwargs["nodes"] = str(config)

    with pytest.raises(ConfigError) as caught:
        load_system(**kwargs)

    assert messages(caught.value) == [f"{missing}: no such file or directory"]


def test_no_configuration_at_all() -> None:
    with pytest.raises(ConfigError) as caught:
        load_system()
    assert "no configuration given" in str(caught.value)
