"""Run each notebook page once, keep the run under a key, and hand it to the book build.

One execution serves both readers of a page: the test suite (``conftest.py`` reports each code cell
as a test item from it) and the HTML build (this module is also a Sphinx extension that hands the
stored runs to myst-nb through its jupyter-cache, so the build executes nothing it already has).

**The key** of a run is a SHA-256 over everything that can change what a page prints: the page's
source, every file of the ``kexue_notes`` package, the lock files (``requirements.txt``,
``constraints.txt``, ``pyproject.toml``), the bibliography (pages read it), this module (it sets
the kernels' environment), the Python version and the machine (:func:`machine`). A stored run is
used only while its key matches; editing any function of the package therefore re-runs every
page. The store lives in ``_build/executions/`` (ignored by git): ``<part>/<page>.ipynb`` (the
executed notebook) and ``<part>/<page>.json`` (the key, the outcome, the wall and CPU seconds of
the kernel, the glued values, and whether a second run agreed).

**The record** (``book/_ext/recorded_values.json``, tracked in git) holds, for every page, the key
and the glued values of a run that a second run of the same key confirmed. A page whose key matches
its record is run once and compared with the record, value by value, instead of being run twice: a
fresh clone of an unchanged book pays for one run per page and still checks every page against a
second, independent execution. The key includes the processor's instruction-set flags and the C
library, so a record made on another kind of machine is not used (the page then runs twice).

**Parallel runs.** :class:`Pool` runs pages in as many kernels at once as the machine has cores,
each kernel with one thread for BLAS and OpenMP (so two kernels never oversubscribe two cores,
and round-off does not depend on the core count). Threads drive the kernels; the kernels are
separate processes, so the pages really run side by side.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
STORE = ROOT / "_build" / "executions"
#: The jupyter-cache that myst-nb reads during the build (Jupyter Book's default place).
JUPYTER_CACHE = ROOT / "_build" / ".jupyter_cache"
#: Inputs of every page besides its own source and the package (added by :func:`page_key`): the
#: lock files, and the bibliography, which pages read to check what they cite.
INPUT_FILES = ("requirements.txt", "constraints.txt", "pyproject.toml", "references.bib")
#: Glued values of confirmed runs, by page id: ``{"key": ..., "glued": {...}}`` (tracked in git).
RECORD = BOOK / "_ext" / "recorded_values.json"
#: Seconds a single cell may run, as ``execute.timeout`` in ``_config.yml``.
CELL_TIMEOUT = 120

#: The environment of every page kernel: offline, one BLAS/OpenMP thread, the inline backend.
KERNEL_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def set_kernel_environment() -> None:
    """Give kernels started from this process the page environment (they inherit it)."""
    os.environ.update(KERNEL_ENV)
    # A backend such as Agg would drop every figure from the page's outputs.
    os.environ.pop("MPLBACKEND", None)


def is_notebook_page(path: Path) -> bool:
    """A page is a notebook when its front matter carries a jupytext header and a kernel."""
    head = path.read_text(encoding="utf-8")[:1000]
    return path.suffix == ".md" and head.startswith("---") and "jupytext" in head \
        and "kernelspec" in head


def page_id(page: Path) -> str:
    """``book/<part>/<page>.md`` -> ``<part>/<page>`` (a page outside the book: its file name)."""
    page = page.resolve()
    return (page.relative_to(BOOK) if page.is_relative_to(BOOK) else Path(page.name)) \
        .with_suffix("").as_posix()


def machine() -> str:
    """What a page's round-off can depend on besides its inputs: the architecture, the processor's
    instruction-set flags (BLAS and torch pick their kernels by them) and the C library."""
    flags = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith(("flags", "Features")):
                flags = " ".join(sorted(line.split(":", 1)[1].split()))
                break
    except OSError:
        pass
    return " | ".join([platform.machine(), flags, " ".join(platform.libc_ver())])


def page_key(page: Path, root: Path = ROOT) -> str:
    """SHA-256 of the page source, the package, :data:`INPUT_FILES`, this module, Python's
    version and :func:`machine`."""
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    add("page", page.read_bytes())
    for path in sorted((root / "kexue_notes").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            add(path.relative_to(root).as_posix(), path.read_bytes())
    for name in INPUT_FILES:
        add(name, (root / name).read_bytes())
    add("runner", Path(__file__).read_bytes())
    add("python", platform.python_version().encode())
    add("machine", machine().encode())
    return digest.hexdigest()


def read_notebook(page: Path) -> Any:
    """The page as a notebook, read as myst-nb reads it for the build (same cells, same hash)."""
    from myst_nb.core.read import read_myst_markdown_notebook
    from myst_parser.config.main import MdParserConfig

    return read_myst_markdown_notebook(page.read_text(encoding="utf-8"), MdParserConfig(),
                                       path=page)


def glued_text(data: dict[str, Any]) -> str:
    """What a glued value shows: its LaTeX if it has one (sympy results), else its plain text."""
    return str(data.get("text/latex") or data.get("text/plain", ""))


def glued_values(nb: Any) -> dict[str, str]:
    """Every value a notebook glued, ``{name: text}``, from its outputs' scrapbook metadata."""
    values = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            record = out.get("metadata", {}).get("scrapbook")
            if record:
                data = {k.removeprefix(record["mime_prefix"]): v for k, v in out["data"].items()}
                values[record["name"]] = glued_text(data)
    return values


@dataclass
class Run:
    """The outcome of one execution of a page."""

    page: str
    key: str
    #: Number of the first code cell that raised (0-based, counting code cells only), or None.
    failed_cell: int | None = None
    error: str = ""
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    glued: dict[str, str] = field(default_factory=dict)
    #: Set once a second run of the same key was compared with this one: True if it glued the same.
    deterministic: bool | None = None
    #: How many page kernels ran at the same time as this one at its start.
    concurrent: int = 1
    #: When the run started and ended (seconds since the epoch).
    started: float = 0.0
    ended: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failed_cell is None


def execute(page: Path, concurrent: int = 1) -> tuple[Run, Any]:
    """Run every code cell of ``page`` in a fresh kernel in the page's folder; stop at the first
    error. Returns the :class:`Run` and the executed notebook."""
    import psutil
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    key = page_key(page)
    nb = read_notebook(page)
    run = Run(page=page_id(page), key=key, concurrent=concurrent)
    # No timing metadata in the cells: jupyter-cache hashes cell metadata, and the build's copy of
    # the page has none.
    # The kernel's own log stays quiet below errors (it warns that it talks over TCP on localhost).
    # Its outputs are in by the end, so it is stopped at once rather than asked to shut down
    # (which takes about 0.7 s of idle waiting per page).
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", record_timing=False,
                            extra_arguments=["--IPKernelApp.log_level=ERROR"],
                            shutdown_kernel="immediate",
                            resources={"metadata": {"path": str(page.parent)}})
    run.started, start = time.time(), time.perf_counter()
    with client.setup_kernel():
        process = psutil.Process(client.km.provisioner.process.pid)  # type: ignore[union-attr]
        code_index = 0
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index, store_history=True)
            except CellExecutionError as err:
                run.failed_cell, run.error = code_index, str(err)
                break
            except Exception as err:  # a time-out or a dead kernel: the cell did not finish
                run.failed_cell, run.error = code_index, f"{type(err).__name__}: {err}"
                break
            code_index += 1
        cpu = process.cpu_times()
        run.cpu_seconds = cpu.user + cpu.system + cpu.children_user + cpu.children_system
    run.wall_seconds, run.ended = time.perf_counter() - start, time.time()
    run.glued = glued_values(nb)
    return run, nb


def _paths(page: str) -> tuple[Path, Path]:
    return STORE / f"{page}.json", STORE / f"{page}.ipynb"


def save(run: Run, nb: Any) -> None:
    """Keep a run (and its notebook, if it succeeded) in the store, replacing any older one."""
    import nbformat

    meta, notebook = _paths(run.page)
    meta.parent.mkdir(parents=True, exist_ok=True)
    if run.ok:
        tmp = notebook.with_suffix(".ipynb.tmp")
        nbformat.write(nb, tmp)
        tmp.replace(notebook)
    else:
        notebook.unlink(missing_ok=True)
    tmp = meta.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(asdict(run), indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(meta)


def stored(page: Path) -> Run | None:
    """The stored run of ``page`` if its key matches the page and the package as they are now."""
    meta, notebook = _paths(page_id(page))
    if not meta.is_file():
        return None
    run = Run(**json.loads(meta.read_text(encoding="utf-8")))
    if run.key != page_key(page) or (run.ok and not notebook.is_file()):
        return None
    return run


def stored_notebook(page: Path) -> Any:
    import nbformat

    return nbformat.read(_paths(page_id(page))[1], as_version=4)


def differences(first: dict[str, str], second: dict[str, str]) -> list[str]:
    """The glued names whose values differ between two runs of one page (or appear in one only)."""
    return [n for n in sorted(set(first) | set(second)) if first.get(n) != second.get(n)]


def read_record(path: Path = RECORD) -> dict[str, Any]:
    """The record of confirmed runs, ``{page id: {"key": ..., "glued": {...}}}`` (empty if none)."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def recorded(page: Path, record: dict[str, Any]) -> dict[str, str] | None:
    """The glued values recorded for ``page``, if recorded under the page's current key."""
    entry = record.get(page_id(page))
    return entry["glued"] if entry is not None and entry["key"] == page_key(page) else None


def write_record(record: dict[str, Any], path: Path = RECORD) -> None:
    """Write the record sorted and indented, so a change of one number is a one-line diff."""
    text = json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


class Pool:
    """Runs pages in ``workers`` kernels at once. :meth:`submit` queues a run, first in first out;
    the first run of a page is stored, later runs are only returned (for the determinism check)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or len(os.sched_getaffinity(0))
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="page")
        self._running = 0
        self._lock = threading.Lock()
        set_kernel_environment()

    def _run(self, page: Path, keep: bool) -> Run:
        with self._lock:
            self._running += 1
            concurrent = self._running
        try:
            run, nb = execute(page, concurrent)
        finally:
            with self._lock:
                self._running -= 1
        if keep:
            save(run, nb)
        return run

    def submit(self, page: Path, keep: bool = True) -> Future[Run]:
        return self._executor.submit(self._run, page, keep)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def ensure_stored(pages: Iterable[Path], workers: int | None = None) -> None:
    """Run, in parallel, every page whose stored run is missing or out of date."""
    stale = [p for p in pages if stored(p) is None]
    if not stale:
        return
    pool = Pool(workers)
    try:
        for future in [pool.submit(p) for p in stale]:
            future.result()
    finally:
        pool.shutdown()


def prime_jupyter_cache(pages: Sequence[Path], cache_path: Path = JUPYTER_CACHE) -> list[str]:
    """Rebuild myst-nb's jupyter-cache from the store: only successful runs whose key matches.

    The cache is emptied first, so the build can never show an execution made from other inputs;
    a page left out is executed by myst-nb itself. Returns the ids of the pages handed over.
    """
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    shutil.rmtree(cache_path, ignore_errors=True)
    cache = get_cache(str(cache_path))
    handed = []
    for page in pages:
        run = stored(page)
        if run is None or not run.ok:
            continue
        cache.cache_notebook_bundle(
            CacheBundleIn(stored_notebook(page), str(page),
                          data={"execution_seconds": run.wall_seconds}),
            check_validity=False, overwrite=True)
        handed.append(run.page)
    return handed


# --- the Sphinx extension -------------------------------------------------------------------

def _runs_table() -> Any:
    """A table of every page's stored run: wall and kernel CPU seconds, and kernels at once."""
    from tables import table

    rows = []
    for page in sorted(p for p in BOOK.rglob("*.md") if is_notebook_page(p)):
        run = stored(page)
        if run is not None:
            rows.append([run.page, f"{run.wall_seconds:.1f}", f"{run.cpu_seconds:.1f}",
                         str(run.concurrent)])
    return table(["page", "wall (s)", "kernel CPU (s)", "kernels at once"], rows, [5, 1, 1, 1],
                 "page-runs")


def _runs_directive() -> Any:
    from sphinx.util.docutils import SphinxDirective

    class PageRunsTable(SphinxDirective):
        def run(self) -> list[Any]:
            return [_runs_table()]

    return PageRunsTable


def _before_read(app: Any, env: Any, docnames: list[str]) -> None:
    """Make sure every notebook page has a current stored run, then hand the runs to myst-nb."""
    pages = [p for p in (ROOT / f"{d}.md" for d in sorted(env.found_docs))
             if p.is_file() and is_notebook_page(p)]
    ensure_stored(pages)
    cache_path = Path(app.config.nb_execution_cache_path or JUPYTER_CACHE)
    handed = prime_jupyter_cache(pages, cache_path if cache_path.is_absolute()
                                 else ROOT / cache_path)
    app.env.kexue_stored_runs = handed


def setup(app: Any) -> dict[str, Any]:
    set_kernel_environment()
    app.connect("env-before-read-docs", _before_read, priority=100)
    app.add_directive("page-runs-table", _runs_directive())
    return {"parallel_read_safe": True, "parallel_write_safe": True}
