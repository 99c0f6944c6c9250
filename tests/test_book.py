"""The strict HTML build of the whole book, and what a reader gets from it.

``jupyter-book build . -W -n --keep-going`` renders every page from its stored run (the run the
page's cell items reported on; ``book/_ext/page_executions.py`` hands it to myst-nb), so it executes
nothing itself; a page without a current stored run would be executed by myst-nb, whose
``raise_on_error`` fails the build on a raising cell. It resolves every reference nitpickily and
treats every warning as an error. The test then opens the HTML: each page has its figure,
rendered-math markup, local MathJax, a download of its notebook, a run time under the budget, and
the glued numbers of the stored run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import BUILD, PAGE_IDS, PAGES, ROOT, px

HTML = ROOT / "_build" / "html"
EXECUTED = ROOT / "_build" / "jupyter_execute"
BUDGET_SECONDS = 20.0


@pytest.fixture(scope="module")
def build() -> str:
    if not (ROOT / "_mathjax" / "mathjax" / "tex-chtml.js").is_file():
        pytest.fail("local MathJax is missing: run `make test` (it installs MathJax with npm)")
    code, log = BUILD.result()  # started by conftest.py as soon as the pages' first runs are done
    problems = [line for line in log.splitlines()
                if re.search(r"WARNING:|ERROR:|Error", line) and "without encryption" not in line]
    assert code == 0, "the strict book build failed:\n" + "\n".join(problems[-40:])
    return log


def glued_values(page: str) -> dict[str, str]:
    """The values the build glued for a page (myst-nb stores them beside the executed notebook)."""
    path = EXECUTED / "book" / f"{page}.glue.json"
    return {key: px.glued_text(out["data"]) for key, out in json.loads(path.read_text()).items()}


def run_times(build: str) -> dict[str, float]:
    """Seconds per page, read from the execution-statistics page made by the build."""
    html = (HTML / "book" / "reference" / "execution-statistics.html").read_text(encoding="utf-8")
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", html, flags=re.S)
    times = {}
    for row in rows:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in cells]
        if len(cells) >= 4:
            times[cells[0]] = float(cells[3])
    return times


def test_book_builds_without_warnings(build: str) -> None:
    assert "build succeeded" in build


@pytest.mark.parametrize("page", PAGE_IDS)
def test_page_renders_for_a_reader(build: str, page: str) -> None:
    html = (HTML / "book" / f"{page}.html").read_text(encoding="utf-8")
    assert 'class="math' in html, "equations are marked up for MathJax"
    assert "mathjax/tex-chtml.js" in html and "cdn" not in html.split("tex-chtml.js")[0][-200:]
    assert f"_sources/book/{page}.ipynb" in html, "the notebook can be downloaded"
    assert f"_sources/book/{page}.md" in html, "the MyST source can be downloaded"
    assert "<img" in html, "the page shows a figure"
    for bad in ("Traceback (most recent call last)", "Warning:", "NameError", "stderr"):
        assert bad not in html, f"the page shows {bad!r}"


def test_the_build_executes_no_page(build: str) -> None:
    """Every page was rendered from its stored run: the build started no kernel."""
    executed = [line for line in build.splitlines() if "Executing notebook" in line]
    assert not executed, "the build executed pages itself:\n" + "\n".join(executed)


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_page_shows_its_stored_run(build: str, page: Path) -> None:
    """The numbers on the page are those of the run its cell items reported on."""
    built = glued_values(px.page_id(page))
    assert built, "the page glues its numbers"
    run = px.stored(page)
    assert run is not None and run.ok, "the page has no current, successful stored run"
    assert built == run.glued


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_page_runs_within_budget(build: str, page: Path) -> None:
    """At most 20 s of the kernel's own CPU time, as shown on the execution-statistics page.

    The pages run two at a time, so a page's wall time depends on what ran beside it (on a busy
    machine, several times its CPU time); its kernel's CPU time is its own cost, the time it takes
    a reader alone on the machine, less about a second to start the kernel."""
    name = f"book/{px.page_id(page)}"
    assert name in run_times(build), f"{name} missing from the execution statistics"
    html = (HTML / "book" / "reference" / "execution-statistics.html").read_text(encoding="utf-8")
    row = re.search(rf"<td><p>{re.escape(px.page_id(page))}</p></td>\s*<td><p>([\d.]+)</p></td>"
                    rf"\s*<td><p>([\d.]+)</p></td>", html)
    assert row, f"{name} missing from the table of page runs"
    cpu = float(row.group(2))
    assert cpu <= BUDGET_SECONDS, f"{name} took {cpu:.1f} s of CPU time"


def test_mathjax_is_served_with_the_book(build: str) -> None:
    assert (HTML / "mathjax" / "tex-chtml.js").is_file()
    assert not (HTML / "_static" / "mathjax").exists()


def test_api_reference_links_back_to_pages(build: str) -> None:
    """Every page is linked from the reference page of its part (``book/reference/api/<part>``)."""
    for page in PAGE_IDS:
        part = page.split("/")[0]
        api = (HTML / "book" / "reference" / "api" / f"{part}.html").read_text(encoding="utf-8")
        assert f"../../{page}.html" in api, f"the {part} API page does not link to {page}"


def test_errata_page_lists_every_erratum_of_the_book(build: str) -> None:
    """One row per erratum box of the book, each linking back to its box; the total agrees."""
    table = (HTML / "book" / "reference" / "errata.html").read_text(encoding="utf-8")
    boxes = 0
    for page, page_id in zip(PAGES, PAGE_IDS, strict=True):
        count = page.read_text(encoding="utf-8").count(":::{erratum}")
        boxes += count
        html = (HTML / "book" / f"{page_id}.html").read_text(encoding="utf-8")
        for n in range(1, count + 1):
            assert f'id="erratum-{n}"' in html, f"{page_id} does not show erratum {n}"
            assert f'{page_id}.html#erratum-{n}"' in table, \
                f"the errata page does not link to erratum {n} of {page_id}"
    assert f"{boxes} errata in " in table
    assert table.count("#erratum-") == boxes

