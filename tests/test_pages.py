"""Every page of the book against the article standard, read as text (no execution here).

The pages themselves run under nbval (see ``conftest.py``) and in the strict book build
(``tests/test_book.py``); this file checks what a page must contain and how it links to the package.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest
import yaml

import kexue_notes
from conftest import BOOK, PAGE_IDS, PAGES, ROOT, read_page

SECTIONS = ["In brief", "Key results", "Derivation", "Numerical check", "Cross-check",
            "Discussion", "References"]
CJK = re.compile(r"[\u4e00-\u9fff]")
SOURCE_URL = re.compile(r"https://kexue\.fm/archives/\d+|https://wmathor\.com/(index\.php/archives/\d+)?")
FUNC_ROLE = re.compile(r"\{py:func\}`(kexue_notes\.[\w.]+)`")
USED_IN = re.compile(r":doc:`(/book/[\w/-]+)`")


def toc_files(node: dict | list) -> list[str]:
    """Every ``file:`` (and the root) named in the table of contents, in order."""
    files: list[str] = []
    if isinstance(node, list):
        for child in node:
            files += toc_files(child)
    elif isinstance(node, dict):
        for key in ("root", "file"):
            if key in node:
                files.append(node[key])
        for key in ("parts", "chapters", "sections"):
            files += toc_files(node.get(key, []))
    return files


TOC = toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8")))
ALL_MD = sorted(BOOK.rglob("*.md"))
PUBLIC_MODULES = sorted(m.name for m in pkgutil.iter_modules(kexue_notes.__path__)
                        if not m.name.startswith("_"))
#: Modules that serve every page rather than one formula (no 'Used in' line needed).
SHARED_MODULES = {"plotting"}


def docname(path: Path) -> str:
    return "/" + path.relative_to(ROOT).with_suffix("").as_posix()


def prose(text: str) -> str:
    """The page without its front matter and code cells."""
    body = text.split("\n---\n", 1)[1]
    return re.sub(r"```\{code-cell\}.*?\n```", "", body, flags=re.S)


def code(path: Path) -> str:
    return "\n".join(c.source for c in read_page(path).cells if c.cell_type == "code")


def public_functions() -> list[tuple[str, object]]:
    out = []
    for name in sorted(set(PUBLIC_MODULES) - SHARED_MODULES):
        module = importlib.import_module(f"kexue_notes.{name}")
        for attr in getattr(module, "__all__", []):
            out.append((f"kexue_notes.{name}.{attr}", getattr(module, attr)))
    return out


# --- the table of contents -------------------------------------------------------------------

def test_the_book_has_pages() -> None:
    assert len(PAGES) >= 4, f"expected the notebook pages under book/, found {PAGE_IDS}"


def test_every_toc_entry_exists() -> None:
    missing = [f for f in TOC if not (ROOT / f"{f}.md").is_file()]
    assert not missing, f"_toc.yml names pages that do not exist: {missing}"


def test_every_page_is_in_the_toc() -> None:
    listed = set(TOC)
    orphans = [p.relative_to(ROOT).with_suffix("").as_posix() for p in ALL_MD]
    orphans = [p for p in orphans if p not in listed]
    assert not orphans, f"pages missing from _toc.yml: {orphans}"


# --- each page -------------------------------------------------------------------------------

@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_page_yields_its_code_cells(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    nb = read_page(page)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    assert len(cells) >= 3, f"{page.name}: jupytext found only {len(cells)} code cells"
    assert len(cells) == text.count("```{code-cell}"), f"{page.name}: some code cells were not read"
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_page_anatomy(page: Path) -> None:
    body = prose(page.read_text(encoding="utf-8"))
    lines = [ln for ln in body.splitlines() if ln.strip()]
    assert lines[0] == f"({page.stem})=", "the page starts with its label, named after the file"
    assert lines[1].startswith("# "), "then its English title"
    assert lines[2].startswith("*Original title:*") and CJK.search(lines[2]), \
        "the original Chinese title sits right under the title"
    box = re.search(r":::\{admonition\} Source\n(.*?)\n:::", body, flags=re.S)
    assert box, "a source box (admonition titled Source)"
    assert SOURCE_URL.search(box.group(1)), "the source box links the original post"
    assert "{footcite}" in box.group(1), "the source box cites the post and its papers"
    headings = re.findall(r"^## (.+)$", body, flags=re.M)
    found = [h for h in headings if h in SECTIONS]
    assert found == SECTIONS, f"sections in order {SECTIONS}, found {headings}"
    assert "```{footbibliography}" in body.split("## References", 1)[1]
    assert "[^" not in body, "no MyST footnotes: citations go through {footcite}"
    assert re.search(r"\$\$ *\([\w-]+\)", body), "at least one numbered, labelled equation"


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_page_derives_checks_and_glues(page: Path) -> None:
    source = code(page)
    body = prose(page.read_text(encoding="utf-8"))
    assert re.search(r"^import sympy as sp$", source, flags=re.M), "derivations use sympy"
    assert re.search(r"^(from|import) kexue_notes", source, flags=re.M), "checks use kexue_notes"
    assert len(re.findall(r"^\s*assert\b|assert_allclose\(", source, flags=re.M)) >= 3, \
        "claims are assertions"
    assert "glue(" in source and re.search(r"\{glue(:\w+)?\}`", body), "numbers in prose are glued"
    assert "use_book_style()" in source and "plt.show()" in source, "at least one figure"
    if re.search(r"random|randn|rand\(|normal\(|Generator", source):
        assert re.search(r"default_rng\(\d+\)|manual_seed\(\d+\)", source), "randomness is seeded"


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_page_links_the_functions_it_checks(page: Path) -> None:
    """Page -> function by {py:func}; function -> page by its docstring's 'Used in'."""
    linked = set(FUNC_ROLE.findall(prose(page.read_text(encoding="utf-8"))))
    assert linked, "the page links the kexue_notes functions it checks"
    for dotted in linked:
        module, name = dotted.rsplit(".", 1)
        func = getattr(importlib.import_module(module), name)
        assert docname(page) in (inspect.getdoc(func) or ""), \
            f"{dotted}'s docstring does not name {docname(page)}"


# --- the package ------------------------------------------------------------------------------

@pytest.mark.parametrize("dotted,func", public_functions(),
                         ids=lambda x: x if isinstance(x, str) else "")
def test_function_names_the_pages_that_use_it(dotted: str, func: object) -> None:
    doc = inspect.getdoc(func) or ""
    assert "Used in:" in doc, f"{dotted} has no 'Used in:' line"
    pages = USED_IN.findall(doc.split("Used in:", 1)[1])
    assert pages, f"{dotted}: 'Used in:' names no page"
    for name in pages:
        path = ROOT / f"{name.lstrip('/')}.md"
        assert path.is_file(), f"{dotted} names a page that does not exist: {name}"
        assert f"{{py:func}}`{dotted}`" in path.read_text(encoding="utf-8"), \
            f"{name} does not link back to {dotted}"


def test_api_page_documents_every_module() -> None:
    api = (BOOK / "reference" / "api.md").read_text(encoding="utf-8")
    missing = [m for m in PUBLIC_MODULES if f".. automodule:: kexue_notes.{m}\n" not in api]
    assert not missing, f"book/reference/api.md does not document {missing}"
