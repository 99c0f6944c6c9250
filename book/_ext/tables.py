"""One docutils table builder for the tables the local extensions generate (errata, page runs)."""

from __future__ import annotations

from collections.abc import Sequence

from docutils import nodes


def table(head: Sequence[str], rows: Sequence[Sequence[nodes.Node | str]],
          widths: Sequence[int], css_class: str) -> nodes.table:
    """A table with a header row; each cell is a string or an inline node (a link, say)."""
    out = nodes.table(classes=[css_class])
    group = nodes.tgroup(cols=len(head))
    out += group
    group += [nodes.colspec(colwidth=w) for w in widths]
    thead, tbody = nodes.thead(), nodes.tbody()
    group += thead
    group += tbody

    def row(cells: Sequence[nodes.Node | str]) -> nodes.row:
        line = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            entry += nodes.paragraph("", "", cell if isinstance(cell, nodes.Node)
                                     else nodes.Text(cell))
            line += entry
        return line

    thead += row(head)
    for cells in rows:
        tbody += row(cells)
    return out
