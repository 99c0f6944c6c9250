"""The page runner (book/_ext/page_executions.py): the key of a stored run covers every input of a
page and the machine; a raising cell is named; a page that glues a different value on its second
run is caught, and so is one that differs from its recorded run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import PAGES, ROOT, px

FRONT = """---
jupytext:
  text_representation:
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A page made for this test
"""


def make_page(folder: Path, *cells: str) -> Path:
    page = folder / "page.md"
    body = "".join(f"\n```{{code-cell}} ipython3\n{source}\n```\n" for source in cells)
    page.write_text(FRONT + body, encoding="utf-8")
    return page


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of what the key reads: one page, the package, the lock files, the bibliography."""
    root = tmp_path_factory.mktemp("tree")
    shutil.copytree(ROOT / "kexue_notes", root / "kexue_notes",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in px.INPUT_FILES:
        shutil.copy(ROOT / name, root / name)
    (root / "page.md").write_text(PAGES[0].read_text(encoding="utf-8"), encoding="utf-8")
    return root


def edited_key(tree: Path, relative: str, edit: str) -> str:
    """The key after appending ``edit`` to one file of the copied tree (restored afterwards)."""
    path = tree / relative
    before = path.read_bytes()
    path.write_bytes(before + edit.encode())
    try:
        return px.page_key(tree / "page.md", root=tree)
    finally:
        path.write_bytes(before)


def test_the_key_covers_page_package_lock_files_and_bibliography(tree: Path) -> None:
    key = px.page_key(tree / "page.md", root=tree)
    assert key == px.page_key(tree / "page.md", root=tree), "the key is a function of the files"
    # one function of one module of one part: every page's key changes
    module = "kexue_notes/representations/softmax.py"
    assert "def " in (tree / module).read_text(encoding="utf-8")
    for relative, edit in [("page.md", "\n"), (module, "\n# edited\n"),
                           ("kexue_notes/_validate.py", " "), ("constraints.txt", "\n"),
                           ("requirements.txt", "\n"), ("pyproject.toml", "\n"),
                           ("references.bib", "\n")]:
        assert edited_key(tree, relative, edit) != key, f"editing {relative} kept the key"
    (tree / "README.md").write_text("not an input of a page", encoding="utf-8")
    assert px.page_key(tree / "page.md", root=tree) == key


def test_the_key_covers_the_machine(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A record made where the processor has other instruction-set flags is not used here."""
    key = px.page_key(tree / "page.md", root=tree)
    here = px.machine()
    assert here.count(" | ") == 2 and here.split(" | ")[1], "architecture | flags | C library"
    monkeypatch.setattr(px, "machine", lambda: here.replace(" | ", " | avx512f ", 1))
    assert px.page_key(tree / "page.md", root=tree) != key


def test_a_record_is_used_only_under_the_key_it_was_made_with(tmp_path: Path) -> None:
    page = make_page(tmp_path, "x = 1")
    name = px.page_id(page)
    glued = {"a": "1", "b": "'text'"}
    path = tmp_path / "record.json"
    px.write_record({name: {"key": px.page_key(page), "glued": glued}}, path)
    record = px.read_record(path)
    assert px.recorded(page, record) == glued
    page.write_text(page.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert px.recorded(page, record) is None, "an edited page does not match its old record"
    assert px.recorded(page, {}) is None and px.read_record(tmp_path / "none.json") == {}
    # sorted and indented: one changed number is one changed line
    text = path.read_text(encoding="utf-8")
    px.write_record({name: {"key": "k", "glued": glued | {"a": "2"}}}, path)
    changed = set(path.read_text(encoding="utf-8").splitlines()) - set(text.splitlines())
    assert changed == {'   "a": "2",', '  "key": "k"'}, changed


def test_every_recorded_page_exists() -> None:
    assert set(px.read_record()) <= {px.page_id(p) for p in PAGES}


def test_a_raising_cell_is_named(tmp_path: Path) -> None:
    page = make_page(tmp_path, "x = 1", "assert x == 2, 'x is not 2'", "y = 3")
    run, _ = px.execute(page)
    assert run.failed_cell == 1 and not run.ok
    assert "AssertionError" in run.error and "x is not 2" in run.error


def test_a_page_that_glues_another_value_on_its_second_run_is_caught(tmp_path: Path) -> None:
    """Two runs of a page that glues its process id; the kernel's environment on the way."""
    px.set_kernel_environment()
    page = make_page(tmp_path, "from myst_nb import glue\nimport os, torch\n"
                               "glue('pid', os.getpid())\nglue('same', 42)\n"
                               "glue('threads', torch.get_num_threads())\n"
                               "glue('offline', os.environ['HF_HUB_OFFLINE'])\n"
                               "glue('cwd', os.getcwd())")
    first, nb = px.execute(page)
    second, _ = px.execute(page)
    assert first.ok and second.ok and px.glued_values(nb) == first.glued
    assert px.differences(first.glued, second.glued) == ["pid"]
    assert px.differences(first.glued, first.glued) == []
    # one thread per kernel, offline, run in the page's folder
    assert first.glued["same"] == "42" and first.glued["threads"] == "1"
    assert first.glued["offline"] == "'1'" and first.glued["cwd"] == repr(str(tmp_path))


def test_glue_does_not_pay_for_a_grammar_it_never_uses() -> None:
    """Every page's first ``glue()`` imports nbformat, hence jsonschema's format checkers;
    jsonschema 4.25+ would import rfc3987-syntax, which builds its Earley parsers at import
    (1.4 s a kernel). requirements.txt pins jsonschema below that; this fails if an update
    brings the parsers back."""
    import subprocess
    import sys

    code = ("import sys, myst_nb; myst_nb.glue('x', 1, display=False); "
            "print('rfc3987_syntax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
