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

import errata
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
ERRATUM = re.compile(r"^:::\{erratum\} *(.*?)\n(.*?)^:::$", flags=re.S | re.M)


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
#: Every public module of the package, dotted (subpackages themselves excluded).
PUBLIC_MODULES = sorted(m.name for m in pkgutil.walk_packages(kexue_notes.__path__, "kexue_notes.")
                        if not m.ispkg and not m.name.rsplit(".", 1)[1].startswith("_"))
#: Modules that serve every page rather than one formula (no 'Used in' line needed).
STYLE_MODULES = {"kexue_notes.plotting"}
#: The book's parts, one folder each under book/ (the subpackage of each mirrors it), and the
#: parts whose pages are still to come but whose subpackages exist.
PARTS = sorted({f.split("/")[1] for f in TOC if f.count("/") == 2} - {"reference"})
PLANNED_PARTS = ["training", "sequences", "classification"]


def subpackage(part: str) -> str:
    """The subpackage that mirrors ``book/<part>/``: ``graphs-physics`` -> ``graphs_physics``."""
    return part.replace("-", "_")


def api_page(module: str) -> Path:
    """The reference page that documents a module: its part's, or the shared modules' page."""
    parts = module.split(".")
    name = parts[1].replace("_", "-") if len(parts) == 3 else "shared"
    return BOOK / "reference" / "api" / f"{name}.md"


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
    for name in sorted(set(PUBLIC_MODULES) - STYLE_MODULES):
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            out.append((f"{name}.{attr}", getattr(module, attr)))
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


def errata_on(text: str) -> list[tuple[str, dict[str, str]]]:
    """Every ``erratum`` directive of a page: its one-line summary and its fields."""
    found = []
    for summary, body in ERRATUM.findall(text):
        fields = dict(re.findall(r"^:(\w+): *(.*)$", body, flags=re.M))
        found.append((summary.strip(), fields))
    return found


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_page_errata_are_complete(page: Path) -> None:
    """Each finding against a post names the post, the place, the kind, both sides and the proof."""
    text = page.read_text(encoding="utf-8")
    assert text.count(":::{erratum}") == len(errata_on(text)), "an erratum box is malformed"
    for summary, fields in errata_on(text):
        assert summary and "\n" not in summary, "an erratum has a one-line summary"
        missing = [f for f in errata.FIELDS if not fields.get(f, "").strip()]
        assert not missing, f"erratum {summary!r} lacks {missing}"
        assert fields["kind"] in errata.KINDS, f"erratum {summary!r}: unknown kind"
        post = fields["post"]
        assert errata.POST.match(post), f"erratum {summary!r}: post {post!r}"
        if post != "wmathor":
            assert f"kexue.fm/archives/{post}" in text, \
                f"erratum {summary!r} is about post {post}, which the page does not link"
        assert re.search(r"\{glue(:\w+)?\}`|\{eq\}`", fields["shows"]), \
            f"erratum {summary!r}: 'shows' gives no glued number or equation"


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


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_api_page_documents_every_module(module: str) -> None:
    """Each module has a heading on its part's reference page, naming a page the module serves."""
    api = api_page(module)
    where = api.relative_to(ROOT)
    assert api.is_file(), f"no reference page {where} for {module}"
    text = api.read_text(encoding="utf-8")
    assert f".. automodule:: {module}\n" in text, f"{where} does not document {module}"
    heading = re.search(rf"^## `{module.rsplit('.', 1)[1]}`: (.+)$", text, flags=re.M)
    assert heading, f"{module} has no heading of its own on {where}"
    if module not in STYLE_MODULES:
        served = set(USED_IN.findall(inspect.getsource(importlib.import_module(module))))
        named = set(re.findall(r"\{doc\}`(?:[^`<]*<)?(/book/[\w/-]+)>?`", heading.group(1)))
        assert named and named <= served, f"the heading of {module} names no page it serves"


# --- the layout: the package and the tests mirror the book ------------------------------------

def test_every_part_has_its_subpackage() -> None:
    names = {subpackage(p) for p in PARTS} | set(PLANNED_PARTS)
    for name in names:
        init = ROOT / "kexue_notes" / name / "__init__.py"
        assert init.is_file(), f"kexue_notes/{name}/ is missing (the book has a part {name})"
        assert importlib.import_module(f"kexue_notes.{name}").__doc__, f"{name} has no docstring"


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_module_sits_in_the_part_it_serves(module: str) -> None:
    """A module of kexue_notes/<part>/ serves that part's pages only; one at the top, several."""
    served = set(USED_IN.findall(inspect.getsource(importlib.import_module(module))))
    parts_served = {subpackage(doc.split("/")[2]) for doc in served}
    parts = module.split(".")
    if len(parts) == 3:
        assert parts_served == {parts[1]}, f"{module} serves the parts {sorted(parts_served)}"
    elif module not in STYLE_MODULES:
        assert len(parts_served) > 1, \
            f"{module} serves only {sorted(parts_served)}: move it into that part's subpackage"


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_module_has_tests_in_the_mirrored_place(module: str) -> None:
    parts = module.split(".")[1:]
    test = ROOT.joinpath("tests", *parts[:-1], f"test_{parts[-1]}.py")
    if module in STYLE_MODULES:
        return
    assert test.is_file(), f"{module} has no tests at {test.relative_to(ROOT)}"


def test_subpackage_docstrings_list_their_modules() -> None:
    for name in {subpackage(p) for p in PARTS}:
        doc = importlib.import_module(f"kexue_notes.{name}").__doc__ or ""
        listed = re.findall(r":mod:`(kexue_notes\.[\w.]+)`", doc)
        inside = [m for m in PUBLIC_MODULES if m.startswith(f"kexue_notes.{name}.")]
        assert sorted(listed) == inside, f"kexue_notes.{name}'s docstring lists {listed}"
