"""The erratum directive and the generated errata table (book/_ext/errata.py), on a small Sphinx
project made for the test: every field is shown, a missing field or an unknown kind is an error,
and the table lists each erratum once, with a link back and counts by kind and by post."""

from __future__ import annotations

import re
from pathlib import Path

import errata
import pytest
from sphinx.application import Sphinx

ERRATUM = """
:::{{erratum}} {summary}
:post: {post}
:where: 第二节「正定」
:kind: {kind}
:says: the matrix is positive definite
:holds: it has $3$ negative eigenvalues
:shows: the eigenvalues below
{extra}:::
"""


def build(tmp_path: Path, pages: dict[str, str]) -> tuple[Path, str]:
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    (src / "conf.py").write_text(
        "extensions = ['myst_parser', 'errata']\n"
        "myst_enable_extensions = ['colon_fence', 'dollarmath']\n", encoding="utf-8")
    toc = "\n".join(pages)
    (src / "index.md").write_text(f"# Book\n\n```{{toctree}}\n{toc}\n```\n", encoding="utf-8")
    for name, body in pages.items():
        (src / f"{name}.md").write_text(body, encoding="utf-8")
    warnings = tmp_path / "warnings.txt"
    with warnings.open("w") as stream:
        app = Sphinx(str(src), str(src), str(out), str(out / ".doctrees"), "html",
                     status=None, warning=stream, freshenv=True)
        app.build()
    return out, warnings.read_text()


def erratum(summary: str, post: str = "4671", kind: str = "wrong claim", extra: str = "") -> str:
    return ERRATUM.format(summary=summary, post=post, kind=kind, extra=extra)


def test_the_box_shows_every_field_and_the_table_lists_it(tmp_path: Path) -> None:
    pages = {
        "a": "# Page A\n\nAs {ref}`slip-two` shows.\n" + erratum("First slip")
             + erratum("Second slip", kind="typo", extra=":label: slip-two\nA longer note.\n"),
        "b": "# Page B\n" + erratum("Third slip", post="wmathor"),
        "errata": "# Errata\n\n```{errata-table}\n```\n",
    }
    out, warnings = build(tmp_path, pages)
    assert warnings == ""
    a = (out / "a.html").read_text(encoding="utf-8")
    for text in ("Erratum 1: First slip", "Erratum 2: Second slip", "The post says",
                 "What holds", "Shown by", "第二节「正定」", "https://kexue.fm/archives/4671",
                 "A longer note."):
        assert text in a
    assert 'id="erratum-1"' in a and 'id="erratum-2"' in a
    assert 'href="#slip-two"' in a and "Erratum 2</span>" in a
    table = (out / "errata.html").read_text(encoding="utf-8")
    assert "3 errata in 2 posts, found on 2 pages." in table
    assert table.count('href="a.html#erratum-') == 2 and 'href="b.html#erratum-1"' in table
    rows = dict(re.findall(r"<td><p>([a-z ]+)</p></td>\s*<td><p>(\d+)</p></td>", table))
    assert rows["wrong claim"] == "2" and rows["typo"] == "1" and rows["dropped factor or sign"] \
        == "0"
    assert all(kind in rows for kind in errata.KINDS)


@pytest.mark.parametrize("body, message", [
    (erratum("No place").replace(":where: 第二节「正定」\n", ""), "missing field(s) where"),
    (erratum("Bad kind", kind="mistake"), "kind must be one of"),
    (erratum("Bad post", post="kexue"), "post must be an archive number"),
])
def test_an_incomplete_erratum_is_an_error(tmp_path: Path, body: str, message: str) -> None:
    _, warnings = build(tmp_path, {"a": "# Page A\n" + body})
    assert message in warnings
