"""The documentation tells the truth: its examples load, its copies match, its links resolve.

Conventions the pages follow (see docs/index.md):

* Every example is a file under ``docs/examples/``. A top-level ``*.yml`` file is one
  configuration, and a folder holding ``nodes.yml`` is one configuration in the directory
  layout. Files whose name contains ``style`` are plot style files. Names starting with
  ``broken`` must fail with ``ConfigError``; every other example must load.
* ``<!-- file: examples/NAME -->`` on the line before a fenced block says that the block is a
  copy of that file, which must be identical.
* ``<!-- output -->`` before a ``console`` block says that its ``$ `` lines, run in order by bash
  from the repository root, print exactly the other lines of the block (stdout and stderr).
* ``<!-- run -->`` before a ``python`` block says that the block runs without error from the
  repository root.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from selflow.codegen import load_system
from selflow.codegen.plot import load_style
from selflow.errors import ConfigError
from selflow.predicates import BUILTIN_PREDICATES, SELINON_ALIASES

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
PAGES = sorted(DOCS.glob("*.md"))
YAML_SUFFIXES = (".yml", ".yaml")

#: Environment the examples are written for (docs/examples/tuning.yml expands {SHOP_ENV}).
EXAMPLE_ENV = {"SHOP_ENV": "staging"}

#: A marker line, then a fenced block: (marker, argument, language, body).
_BLOCK = re.compile(
    r"^<!-- (?P<marker>file|output|run)(?::\s*(?P<arg>\S+))?\s*-->\n"
    r"```(?P<lang>[\w-]*)\n(?P<body>.*?)^```\s*$",
    re.MULTILINE | re.DOTALL,
)
_MARKER = re.compile(r"^<!--\s*(file|output|run)\b.*-->\s*$", re.MULTILINE)
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _blocks(marker: str) -> list[tuple[Path, str | None, str]]:
    found = []
    for page in PAGES:
        for match in _BLOCK.finditer(page.read_text(encoding="utf-8")):
            if match["marker"] == marker:
                found.append((page, match["arg"], match["body"]))
    return found


def _block_id(block: tuple[Path, str | None, str]) -> str:
    page, arg, body = block
    return f"{page.name}:{arg or body.splitlines()[0][:60]}"


def _config_dirs() -> list[Path]:
    return sorted(p for p in EXAMPLES.iterdir()
                  if p.is_dir() and any((p / n).is_file() for n in ("nodes.yml", "nodes.yaml")))


def _examples() -> list[Path]:
    files = sorted(p for p in EXAMPLES.iterdir() if p.is_file() and p.suffix in YAML_SUFFIXES)
    return files + _config_dirs()


@pytest.fixture
def in_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if run from docs/examples: custom predicate modules there can be imported."""
    for name, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(EXAMPLES)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)


# --- (a) every example loads, every broken one fails -------------------------------------------


@pytest.mark.parametrize("example", _examples(), ids=lambda p: p.name)
def test_example_loads_or_fails_as_named(example: Path, in_examples: None) -> None:
    broken = example.name.startswith("broken")
    style = "style" in example.stem and example.is_file()
    load = (lambda: load_style(str(example))) if style else (lambda: load_system([str(example)]))
    if broken:
        with pytest.raises(ConfigError):
            load()
    else:
        load()


def test_every_yaml_example_belongs_to_a_tested_example() -> None:
    covered = set(_examples())
    for directory in _config_dirs():
        covered.update(directory.rglob("*"))
    stray = sorted(str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*")
                   if p.suffix in YAML_SUFFIXES and p not in covered)
    assert not stray, f"YAML files under docs/examples that no test loads: {stray}"


def test_every_example_file_is_referenced_from_a_page() -> None:
    text = "\n".join(page.read_text(encoding="utf-8") for page in PAGES)
    missing = []
    for path in EXAMPLES.rglob("*"):
        relative = path.relative_to(EXAMPLES)
        if not path.is_file() or "__pycache__" in relative.parts:
            continue
        # a top-level file by its path; a file in a folder by its name (e.g. in an inline copy)
        mention = f"examples/{relative.as_posix()}" if len(relative.parts) == 1 else path.name
        if mention not in text:
            missing.append(relative.as_posix())
    assert not missing, f"example files no page mentions: {sorted(missing)}"


# --- (b) inline copies are identical to the files ---------------------------------------------


def test_markers_are_followed_by_a_fenced_block() -> None:
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        markers = len(_MARKER.findall(text))
        blocks = len(list(_BLOCK.finditer(text)))
        assert markers == blocks, f"{page.name}: a <!-- file/output/run --> marker is not directly before a block"


@pytest.mark.parametrize("block", _blocks("file"), ids=_block_id)
def test_inline_copy_is_identical_to_the_file(block: tuple[Path, str | None, str]) -> None:
    page, target, body = block
    assert target, f"{page.name}: '<!-- file: -->' needs a path"
    path = (page.parent / target).resolve()
    assert path.is_file(), f"{page.name}: {target} does not exist"
    assert body == path.read_text(encoding="utf-8"), (
        f"{page.name}: the block marked {target} differs from the file; copy the file into the page")


def test_there_are_inline_copies() -> None:
    assert len(_blocks("file")) >= 10


# --- (c) every built-in predicate is documented ----------------------------------------------


@pytest.mark.parametrize("name", sorted(BUILTIN_PREDICATES))
def test_builtin_predicate_is_in_predicates_md(name: str) -> None:
    text = (DOCS / "predicates.md").read_text(encoding="utf-8")
    assert f"`{name}`" in text, f"docs/predicates.md does not list the predicate {name}"


@pytest.mark.parametrize("alias", sorted(SELINON_ALIASES))
def test_selinon_alias_is_in_predicates_md(alias: str) -> None:
    text = (DOCS / "predicates.md").read_text(encoding="utf-8")
    assert f"`{alias}`" in text, f"docs/predicates.md does not give the Selinon name {alias}"


# --- (d) links and images resolve ------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES + [ROOT / "README.md"], ids=lambda p: p.name)
def test_relative_links_and_images_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)  # no links in code
    broken = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor on the same page
        path = target.split("#", 1)[0]
        if not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"{page.name} links to missing files: {broken}"


# --- real outputs and runnable snippets ------------------------------------------------------


def _shell_env() -> dict[str, str]:
    env = dict(os.environ, **EXAMPLE_ENV, PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1")
    env.pop("SELFLOW_CONFIG", None)
    # `python` in the pages is the interpreter running the tests
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


@pytest.mark.parametrize("block", _blocks("output"), ids=_block_id)
def test_console_output_is_real(block: tuple[Path, str | None, str]) -> None:
    page, _, body = block
    commands = [line[2:] for line in body.splitlines() if line.startswith("$ ")]
    expected = [line for line in body.splitlines() if not line.startswith("$ ")]
    assert commands, f"{page.name}: an output block needs '$ command' lines"
    script = "\n".join(commands)
    result = subprocess.run(["bash", "-c", f"exec 2>&1\n{script}"], cwd=ROOT, env=_shell_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.splitlines() == expected, (
        f"{page.name}: the output shown for\n{script}\nis not what it prints now:\n{result.stdout}")


@pytest.mark.parametrize("block", _blocks("run"), ids=_block_id)
def test_python_snippet_runs(block: tuple[Path, str | None, str]) -> None:
    page, _, body = block
    result = subprocess.run([sys.executable, "-c", body], cwd=ROOT, env=_shell_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{page.name}: a snippet marked 'run' failed:\n{result.stderr}"
