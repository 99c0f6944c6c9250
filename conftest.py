"""Collect every page of the book as tests, and share the package tests' fixtures.

A page is a MyST Markdown notebook under ``book/``. Each of its code cells is one test item,
``book/<part>/<page>.md::Cell N``, and one more item, ``book/<part>/<page>.md::Determinism``, checks
that a second, independent run of the page glues the same values: the run recorded for the page's
current key in ``book/_ext/recorded_values.json`` if there is one, else a second run made now (whose
agreement is then recorded). The pages run two at a time (one kernel per core, see
``book/_ext/page_executions.py``); a cell item waits for its page's run and fails with the cell's
traceback if that cell raised (later cells are then reported as not run). The items run in four
phases: the pages' cells; the package's tests, while the strict build (which renders the stored runs
and executes nothing) runs beside them in its own process, started as soon as the pages' first runs
are done, and any second runs go on; the checks of the built HTML (``tests/test_book.py``); the
determinism checks. A page whose stored run still matches its key (page, package, lock files,
machine) and was checked by a second run is not run again: its items are skipped, saying so.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jupytext
import numpy as np
import pytest
from hypothesis import settings

ROOT = Path(__file__).parent
BOOK = ROOT / "book"
sys.path.insert(0, str(BOOK / "_ext"))

import page_executions as px  # noqa: E402 -- after the path to book/_ext/

# Pages (and the tests here, which share the cores with them) run offline, with one BLAS and
# OpenMP thread per process; kernels draw with the inline backend. Set before torch is imported.
px.set_kernel_environment()

if TYPE_CHECKING:  # imported by the fixtures that need it: torch takes a second to load
    from kexue_notes.diffusion import schedule as sch

# Property tests draw the same examples on every run, so a green CI stays green; set
# HYPOTHESIS_PROFILE=explore to search with fresh random examples instead.
settings.register_profile("deterministic", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


def read_page(path: Path) -> jupytext.NotebookNode:
    """Read a page as a notebook. The format is given explicitly: guessing can yield no cells."""
    return jupytext.read(path, fmt="md:myst")


is_notebook_page = px.is_notebook_page

#: Every notebook page of the book, and its id ``<part>/<page>``.
PAGES = sorted(p for p in BOOK.rglob("*.md") if is_notebook_page(p))
PAGE_IDS = [px.page_id(p) for p in PAGES]


# --- the pages as test items -----------------------------------------------------------------

class PageRuns:
    """The runs of one page in this session: the first (kept in the store) and the second."""

    def __init__(self, page: Path) -> None:
        self.page = page
        self.reused: px.Run | None = None
        #: The glued values of the recorded run of the page's current key, if there is one.
        self.recorded: dict[str, str] | None = None
        self.first: Future[px.Run] | None = None
        self.second: Future[px.Run] | None = None

    def first_run(self) -> px.Run:
        if self.reused is not None:
            return self.reused
        assert self.first is not None, "the page was not scheduled"
        return self.first.result()


RUNS: dict[Path, PageRuns] = {}
POOL: px.Pool | None = None
#: Entries of the record confirmed by a second run in this session, written when it ends.
NEW_RECORDS: dict[str, dict[str, Any]] = {}
#: Where a session records its phases and page runs (read by ``make bench``).
PHASE_LOG = ROOT / "_build" / "test-phases.json"


class PageFile(pytest.File):
    """A notebook page: one item per code cell, then the determinism check."""

    def collect(self) -> Iterator[pytest.Item]:
        RUNS.setdefault(self.path, PageRuns(self.path))
        cells = [c for c in px.read_notebook(self.path).cells if c.cell_type == "code"]
        for number, cell in enumerate(cells):
            yield PageCell.from_parent(self, name=f"Cell {number}", number=number,
                                       source=cell.source)
        yield PageDeterminism.from_parent(self, name="Determinism")


class PageCell(pytest.Item):
    def __init__(self, *, number: int, source: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.number, self.source = number, source

    def runtest(self) -> None:
        runs = RUNS[self.path]
        if runs.reused is not None:
            pytest.skip("unchanged since its stored run, which passed and was run twice alike")
        run = runs.first_run()
        if run.failed_cell is None or self.number < run.failed_cell:
            return
        if self.number == run.failed_cell:
            raise PageCellError(run.error)
        pytest.skip(f"not run: Cell {run.failed_cell} of this page failed first")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, PageCellError):
            return f"{self.path.relative_to(ROOT)}, {self.name}, raised:\n{excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.path.relative_to(ROOT)}::{self.name}"


class PageCellError(Exception):
    """A cell of a page raised; the message is the cell's source and traceback."""


class PageDeterminism(pytest.Item):
    """A second run of the page, in another kernel, glues exactly the values of the first: the
    recorded run of the same key, or one made in this session."""

    def runtest(self) -> None:
        runs = RUNS[self.path]
        if runs.second is None and runs.recorded is None:
            pytest.skip("checked when its stored run was made")
        first = runs.first_run()
        if not first.ok:
            pytest.skip("the first run failed (see its cells)")
        if runs.second is not None:
            second = runs.second.result()
            if not second.ok:
                pytest.fail(f"the second run failed in Cell {second.failed_cell}, the first did "
                            f"not:\n{second.error}", pytrace=False)
            other, which, there = second.glued, "its second run", "then"
        else:
            assert runs.recorded is not None
            other, there = runs.recorded, "recorded"
            which = f"the recorded run of the same key ({RECORD_NAME})"
        differ = px.differences(first.glued, other)
        record_determinism(self.path, not differ)
        if differ:
            shown = "\n".join(f"  {n}: {first.glued.get(n)!r}, {there} {other.get(n)!r}"
                              for n in differ)
            pytest.fail(f"{len(differ)} glued value(s) differ between this run and {which}:\n"
                        f"{shown}", pytrace=False)
        if runs.second is not None:
            NEW_RECORDS[first.page] = {"key": first.key, "glued": first.glued}

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.path.relative_to(ROOT)}::{self.name}"


def record_determinism(page: Path, same: bool) -> None:
    """Write the verdict into the stored run, so an unchanged page is not run again next time."""
    run = px.stored(page)
    if run is not None:
        run.deterministic = same
        meta = px.STORE / f"{run.page}.json"
        meta.write_text(json.dumps(px.asdict(run), indent=1, sort_keys=True), encoding="utf-8")


RECORD_NAME = px.RECORD.relative_to(ROOT).as_posix()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.is_relative_to(BOOK) and is_notebook_page(file_path):
        return PageFile.from_parent(parent, path=file_path)
    return None


def _phase(item: pytest.Item) -> int:
    """The pages' cells first: their first runs then have the two cores to themselves, so the run
    times the book reports are not inflated by the package tests, which come next (alongside the
    build and any second runs), then the checks of the built book, then the determinism checks."""
    if isinstance(item, PageCell):
        return 0
    if isinstance(item, PageDeterminism):
        return 3
    return 2 if item.path.name == "test_book.py" else 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_phase)
    BUILD.wanted = any(_phase(item) == 2 for item in items)


# --- the strict build, in its own process beside the package tests ---------------------------

class Build:
    """``jupyter-book build . -W -n --keep-going --all``, started once the pages' first runs are
    stored (it renders them and executes nothing it has), so that it shares the cores with the
    package tests rather than waiting for them. ``--all`` re-reads every page, so no warning hides
    in a warm build."""

    LOG = ROOT / "_build" / "book-build.log"

    def __init__(self) -> None:
        self.wanted = False
        self.process: subprocess.Popen[bytes] | None = None
        self.began = 0.0

    def start(self) -> None:
        if self.process is not None:
            return
        jupyter_book = Path(sys.executable).parent / "jupyter-book"
        command = [str(jupyter_book), "build", str(ROOT), "-W", "-n", "--keep-going", "--all"]
        self.LOG.parent.mkdir(parents=True, exist_ok=True)
        with self.LOG.open("wb") as log:
            self.began = time.time()
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=ROOT)

    def result(self) -> tuple[int, str]:
        """Wait for the build (starting it if need be); its exit status and its log."""
        self.start()
        assert self.process is not None
        code = self.process.wait()
        PHASES.setdefault("build (its own process)", [self.began, time.time()])
        return code, self.LOG.read_text(encoding="utf-8", errors="replace")


BUILD = Build()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """The first item after the pages' cells starts the build: every first run is stored by then."""
    if BUILD.wanted and _phase(item) >= 1:
        BUILD.start()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Queue the first run of every page that needs one, then every second run."""
    global POOL
    pages = [p for p in RUNS if any(isinstance(i, PageCell) and i.path == p
                                    for i in session.items)]
    record = px.read_record()
    firsts, seconds = [], []
    for page in pages:
        stored = px.stored(page)
        runs = RUNS[page]
        runs.recorded = px.recorded(page, record)
        if stored is not None and stored.ok and stored.deterministic:
            runs.reused, runs.recorded = stored, None
        elif stored is not None and stored.ok and stored.deterministic is None:
            runs.reused = stored  # made by the build: only the second run is missing
            if runs.recorded is None:
                seconds.append(page)
        else:
            firsts.append(page)
            if runs.recorded is None:
                seconds.append(page)
    if not (firsts or seconds) or session.config.option.collectonly:
        return
    POOL = px.Pool()
    for page in firsts:
        RUNS[page].first = POOL.submit(page, keep=True)
    for page in seconds:
        RUNS[page].second = POOL.submit(page, keep=False)


#: Names of the phases of a session, by :func:`_phase`, and when each began and ended.
PHASE_NAMES = ["page cells", "package tests", "book checks", "determinism checks"]
PHASES: dict[str, list[float]] = {}
STARTED = time.time()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Any:
    began = time.time()
    try:
        return (yield)
    finally:
        span = PHASES.setdefault(PHASE_NAMES[_phase(item)], [began, began])
        span[1] = time.time()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How each page's determinism was checked, so a slow run says why it ran pages twice."""
    against = sum(1 for r in RUNS.values() if r.recorded is not None and r.second is None
                  and (r.first is not None or r.reused is not None))
    twice = sum(1 for r in RUNS.values() if r.second is not None)
    if against or twice:
        terminalreporter.write_line(
            f"determinism: {against} page(s) compared with their recorded run, {twice} run a "
            f"second time ({len(NEW_RECORDS)} new record(s) for {RECORD_NAME})")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the pool and any build, record the runs a second run confirmed (dropping pages that
    are gone), and write when each phase ran (``make bench`` prints it)."""
    if POOL is not None:
        POOL.shutdown()
    if BUILD.process is not None and BUILD.process.poll() is None:
        BUILD.process.kill()
    if NEW_RECORDS:
        record = {page: entry for page, entry in px.read_record().items() if page in PAGE_IDS}
        px.write_record(record | NEW_RECORDS)
    runs = []
    for page_runs in RUNS.values():
        for which, future in (("first", page_runs.first), ("second", page_runs.second)):
            if future is not None and future.done() and not future.cancelled() \
                    and future.exception() is None:
                record = px.asdict(future.result())
                record.pop("glued")
                runs.append({"run": which, **record})
    log = {"started": STARTED, "ended": time.time(), "phases": PHASES, "runs": runs}
    PHASE_LOG.parent.mkdir(parents=True, exist_ok=True)
    PHASE_LOG.write_text(json.dumps(log, indent=1), encoding="utf-8")


# --- shared fixtures of the package tests ---------------------------------------------------

@pytest.fixture(scope="module")
def su() -> sch.Schedule:
    """Su's schedule, alpha_t = sqrt(1 - 0.02 t/T), with T = 1000."""
    from kexue_notes.diffusion import schedule as sch

    return sch.schedule_su(1000)


def random_schedule(seed: int, T: int, high: float = 0.5) -> sch.Schedule:
    """A schedule with random squared step noises beta_t^2 in (1e-4, high), in random order."""
    from kexue_notes.diffusion import schedule as sch

    rng = np.random.default_rng(seed)
    return sch.schedule_from_betas(rng.uniform(1e-4, high, size=T))


def assert_optimizer_round_trip(make: Callable[[list], Any], p0: Any, grads: Sequence[Any],
                                stop: int) -> tuple[Any, Any]:
    """Step ``make([p])`` on ``grads[:stop]``, load its ``state_dict`` into a fresh optimizer on a
    copy of the parameter, then step both on the rest: the two trajectories must be identical.

    Returns the fresh optimizer and its parameter, for further checks of the restored state.
    """
    p = p0.detach().clone().requires_grad_(True)
    opt = make([p])
    for g in grads[:stop]:
        p.grad = g.clone()
        opt.step()
    q = p.detach().clone().requires_grad_(True)
    fresh = make([q])
    fresh.load_state_dict(copy.deepcopy(opt.state_dict()))
    for g in grads[stop:]:
        p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        fresh.step()
        assert bool((p == q).all()), "the restored optimizer left the original trajectory"
    return fresh, q
