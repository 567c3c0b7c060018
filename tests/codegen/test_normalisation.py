"""What the validator normalises on the way to the model: edge ids, schemas, predicate lookup."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from selflow.codegen import load_system
from selflow.codegen.compiled import compile_tables
from selflow.codegen.emit import emit_module
from selflow.errors import ConfigError


def write(tmp_path: Path, text: str, name: str = "config.yml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_identical_edges_get_distinct_stable_ids(tmp_path: Path) -> None:
    # Given a flow listing the same edge twice (Selinon starts its node once per edge)
    config = write(tmp_path, """\
        tasks: [{name: A, import: t}, {name: B, import: t}]
        flows: [f]
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
              - {from: A, to: B}
              - {from: A, to: B}
        """)
    # When it is compiled
    flow = compile_tables(load_system([config])).flows["f"]
    # Then every edge keeps its own id, and the lookup by id holds all three
    ids = [edge.id for edge in flow.edges]
    assert len(set(ids)) == 3
    assert ids[2] == ids[1] + "_2"
    assert len(flow.edges_by_id) == 3
    assert len(flow.edges_by_source["A"]) == 2


def test_output_schema_is_carried_in_the_tables_not_its_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a task whose schema file sits next to the YAML file
    schema = {"type": "object", "required": ["id"]}
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "out.json").write_text(json.dumps(schema))
    config = write(tmp_path, """\
        tasks: [{name: A, import: t, output_schema: schemas/out.json}]
        flows: [f]
        flow-definitions: [{name: f, edges: [{from: , to: A}]}]
        """)
    # When it is compiled from two different working directories
    monkeypatch.chdir(tmp_path)
    here = emit_module(load_system([config]))
    monkeypatch.chdir(tmp_path / "schemas")
    elsewhere = emit_module(load_system([config]))
    # Then the schema itself is in the model and the generated module is the same bytes
    assert load_system([config]).task("A").output_schema == schema
    assert here == elsewhere


CUSTOM_PREDICATES = """\
from typing import Iterable

from selflow.predicates import field_equal as reexported


def title_has(message, word):
    return word in message.get("title", "")
"""


def test_a_custom_predicates_module_offers_only_its_own_functions(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a custom predicates module that also imports other names
    (tmp_path / "norm_preds.py").write_text(CUSTOM_PREDICATES)
    monkeypatch.syspath_prepend(str(tmp_path))
    template = """\
        tasks: [{{name: A, import: t}}, {{name: B, import: t}}]
        flows: [f]
        global: {{predicates_module: norm_preds}}
        flow-definitions:
          - name: f
            edges:
              - {{from: , to: A}}
              - {{from: A, to: B, condition: {{name: {name}, args: {args}}}}}
        """
    # When conditions name its own function, an imported one, and a built-in
    own = write(tmp_path, template.format(name="title_has", args="{word: x}"), "own.yml")
    imported = write(tmp_path, template.format(name="Iterable", args="{}"), "imported.yml")
    builtin = write(tmp_path, template.format(name="field_equal", args="{key: a, value: 1}"), "builtin.yml")
    # Then its own function and the built-ins are predicates, an imported name is not
    assert load_system([own]).flow("f").edges[1].condition.ref.module == "norm_preds"
    assert load_system([builtin]).flow("f").edges[1].condition.ref.module == "selflow.predicates"
    with pytest.raises(ConfigError, match="unknown predicate 'Iterable'"):
        load_system([imported])
