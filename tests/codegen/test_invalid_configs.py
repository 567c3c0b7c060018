"""The corpus of invalid configurations: each must be rejected with exactly the issues it expects.

``data/invalid/*.yml`` are single files (tasks, flows and flow-definitions together). Each starts
with one comment line per expected issue::

    # expect: LINE:COL: key.path: message

and the test adds the file's path in front. ``data/invalid_dirs/<case>/`` are directory layouts
(``nodes.yml`` + ``flows/``) for mistakes that need several files; ``expect.txt`` lists the issues
as ``relative/file.yml:LINE:COL: key.path: message``. The directory is loaded from inside itself,
so paths in messages are relative too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from selflow.codegen import load_system
from selflow.errors import ConfigError

DATA = Path(__file__).parent / "data"
FILE_CASES = sorted((DATA / "invalid").glob("*.yml"))
DIR_CASES = sorted(path for path in (DATA / "invalid_dirs").iterdir() if path.is_dir())
EXPECT = "# expect: "

#: variables the corpus relies on being unset
UNSET_VARIABLES = ("SELFLOW_TEST_UNSET_VAR",)


def expected_in_file(path: Path) -> list[str]:
    expected = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith(EXPECT):
            break
        expected.append(f"{path}:{line[len(EXPECT):]}")
    return expected


def issues_of(*args, **kwargs) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_system(*args, **kwargs)
    assert caught.value.issues, "a ConfigError must name at least one issue"
    return sorted(str(issue) for issue in caught.value.issues)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in UNSET_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("path", FILE_CASES, ids=[path.name for path in FILE_CASES])
def test_invalid_file(path: Path) -> None:
    expected = expected_in_file(path)
    assert expected, f"{path.name} has no '{EXPECT}' lines"
    assert issues_of([str(path)]) == sorted(expected)


@pytest.mark.parametrize("case", DIR_CASES, ids=[case.name for case in DIR_CASES])
def test_invalid_directory(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = [line for line in (case / "expect.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    assert expected, f"{case.name}/expect.txt is empty"
    monkeypatch.chdir(case)
    assert issues_of(["."]) == sorted(expected)


def test_corpus_is_large_enough() -> None:
    assert len(FILE_CASES) + len(DIR_CASES) >= 45


def test_every_case_names_one_theme() -> None:
    """Each file says in a comment what it gets wrong, after its expectations."""
    for path in FILE_CASES:
        lines = path.read_text(encoding="utf-8").splitlines()
        theme = next((line for line in lines if not line.startswith(EXPECT)), "")
        assert theme.startswith("# "), f"{path.name}: describe the mistake in a comment after the expect lines"


def test_issues_print_as_path_line_column_key_message(tmp_path: Path) -> None:
    config = tmp_path / "bad.yml"
    config.write_text("tasks:\n  - name: Fetch\n    import: acme.tasks\n    max_retry: -1\n"
                      "flows: [main]\n"
                      "flow-definitions:\n  - name: main\n    edges:\n      - from:\n        to: Fetch\n",
                      encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_system([str(config)])
    (issue,) = caught.value.issues
    assert (issue.path, issue.line, issue.column, issue.key_path) == (str(config), 4, 16, "tasks.Fetch.max_retry")
    assert str(issue) == f"{config}:4:16: tasks.Fetch.max_retry: {issue.message}"
    assert str(caught.value) == str(issue)
