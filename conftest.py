"""Collect every page of the book as an nbval notebook, read through jupytext (no .ipynb on disk).

A page is a MyST Markdown notebook under ``book/``; each of its code cells becomes one test item,
``book/<part>/<page>.md::Cell N``, run in a fresh kernel in the page's folder. Outputs are not
compared (the pages carry none); a cell fails when it raises, which includes a failed ``assert``.
"""

from __future__ import annotations

import copy
import os
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import jupytext
import numpy as np
import pytest
from hypothesis import settings
from nbval.plugin import IPyNbCell, IPyNbFile

from kexue_notes.diffusion import schedule as sch

ROOT = Path(__file__).parent
BOOK = ROOT / "book"

# Pages must run offline; kernels inherit this environment. MPLBACKEND is cleared: kernels must draw
# with the inline backend, as a backend such as Agg would drop every figure from the page's outputs.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.pop("MPLBACKEND", None)
# One BLAS thread per kernel: the pages' matrices are small, and OpenBLAS's spinning worker threads
# made a page up to 40 times slower whenever another process shared the two cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# Property tests draw the same examples on every run, so a green CI stays green; set
# HYPOTHESIS_PROFILE=explore to search with fresh random examples instead.
settings.register_profile("deterministic", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


def read_page(path: Path) -> jupytext.NotebookNode:
    """Read a page as a notebook. The format is given explicitly: guessing can yield no cells."""
    return jupytext.read(path, fmt="md:myst")


def is_notebook_page(path: Path) -> bool:
    """A page is a notebook when its front matter carries a jupytext header and a kernel."""
    head = path.read_text(encoding="utf-8")[:1000]
    front = head.startswith("---") and "jupytext" in head and "kernelspec" in head
    return path.suffix == ".md" and front


#: Every notebook page of the book, and its id ``<part>/<page>``.
PAGES = sorted(p for p in BOOK.rglob("*.md") if is_notebook_page(p))
PAGE_IDS = [p.relative_to(BOOK).with_suffix("").as_posix() for p in PAGES]

#: Values each page glued while nbval ran it: {"book/<part>/<page>": {key: text}}. The strict
#: build in tests/test_book.py runs every page again and must glue the same values.
GLUED: dict[str, dict[str, str]] = {}


def glued_text(data: dict[str, str]) -> str:
    """What a glued value shows: its LaTeX if it has one (sympy results), else its plain text."""
    return data.get("text/latex") or data.get("text/plain", "")


class MystNotebook(IPyNbFile):
    """nbval's notebook collector, fed by jupytext instead of nbformat."""

    def collect(self) -> Iterator[IPyNbCell]:
        self.nb = read_page(self.path)
        code_cells = (cell for cell in self.nb.cells if cell.cell_type == "code")
        for cell_num, cell in enumerate(code_cells):
            yield IPyNbCell.from_parent(
                self, name=f"Cell {cell_num}", cell_num=cell_num, cell=cell,
                options=defaultdict(bool, check=False),
            )


def pytest_runtest_teardown(item: pytest.Item) -> None:
    if isinstance(item, IPyNbCell) and item.test_outputs:
        page = item.path.relative_to(ROOT).with_suffix("").as_posix()
        for out in item.test_outputs:
            record = out.get("metadata", {}).get("scrapbook")
            if record:
                data = {k.removeprefix(record["mime_prefix"]): v for k, v in out["data"].items()}
                GLUED.setdefault(page, {})[record["name"]] = glued_text(data)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.is_relative_to(BOOK) and is_notebook_page(file_path):
        return MystNotebook.from_parent(parent, path=file_path)
    return None


# --- shared fixtures of the package tests ---------------------------------------------------

@pytest.fixture(scope="module")
def su() -> sch.Schedule:
    """Su's schedule, alpha_t = sqrt(1 - 0.02 t/T), with T = 1000."""
    return sch.schedule_su(1000)


def random_schedule(seed: int, T: int, high: float = 0.5) -> sch.Schedule:
    """A schedule with random squared step noises beta_t^2 in (1e-4, high), in random order."""
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
