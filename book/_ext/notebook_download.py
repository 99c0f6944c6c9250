"""Offer every notebook page for download as .ipynb, next to its .md source.

sphinx-book-theme adds the ".ipynb" download entry only when a launch service (Binder, Colab, ...)
is configured; this book has none, as it is built and read offline. This extension does the part we
need: copy the notebook that myst-nb executed into ``_sources/`` and tell the theme it is there.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx


def add_notebook_source(app: Sphinx, pagename: str, templatename: str,
                        context: dict[str, Any], doctree: Any) -> None:
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.is_file():
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app: Sphinx) -> dict[str, Any]:
    # Before sphinx-book-theme builds its header buttons (priority 501).
    app.connect("html-page-context", add_notebook_source, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
