"""The ``erratum`` directive, through which every finding against a post goes, and the errata table.

On a page::

    :::{erratum} The per-pair gradient lacks a factor 2
    :post: 4675
    :where: eq. (22)
    :kind: dropped factor or sign
    :says: what the post says, in our words
    :holds: what holds instead
    :shows: the glued number or the equation that shows it, e.g. {glue:text}`gap` or {eq}`grad`
    :label: glove-grad-factor
    :::

The argument is a one-line summary (it is the row of the errata table). An optional ``:label:``
lets the page's summary and discussion refer to the box with ``{ref}`label``` (shown as
"Erratum N") instead of restating it. ``post`` is the archive
number of a kexue.fm post (``4671``) or ``wmathor`` for a wmathor summary; ``where`` finds the place
in the post (an equation number, a section, or a short quoted phrase in Chinese); ``kind`` is one
of :data:`KINDS`. Every field is required and may hold inline markup (glue roles, math,
references); an optional body explains further. The box on the page has an anchor, and
``{errata-table}`` on ``book/reference/errata.md`` lists every erratum of the book, with links
back and counts by kind and by post, built from the directives when the book is built.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from tables import table

#: The kinds of finding, as the errata page counts them.
KINDS = (
    "typo",
    "dropped factor or sign",
    "wrong claim",
    "imprecise or overstated",
    "wrong link or citation",
    "not reproducible as printed",
)
FIELDS = ("post", "where", "kind", "says", "holds", "shows")
POST = re.compile(r"^(\d{3,5}|wmathor)$")


def post_url(post: str) -> str:
    return "https://wmathor.com/" if post == "wmathor" else f"https://kexue.fm/archives/{post}"


def post_label(post: str) -> str:
    return "wmathor's blog" if post == "wmathor" else f"kexue.fm/archives/{post}"


class errata_table(nodes.General, nodes.Element):  # noqa: N801 -- docutils names nodes so
    """Placeholder for the table, filled in once every page has been read."""


class ErratumDirective(SphinxDirective):
    required_arguments = 1
    final_argument_whitespace = True
    has_content = True
    option_spec: ClassVar[dict[str, Any]] = {
        **{name: directives.unchanged_required for name in FIELDS},
        "label": directives.unchanged_required,
    }

    def run(self) -> list[nodes.Node]:
        missing = [f for f in FIELDS if not self.options.get(f, "").strip()]
        if missing:
            raise self.error(f"erratum: missing field(s) {', '.join(missing)}")
        post, kind = self.options["post"].strip(), self.options["kind"].strip()
        if not POST.match(post):
            raise self.error(f"erratum: post must be an archive number or 'wmathor', got {post!r}")
        if kind not in KINDS:
            raise self.error(f"erratum: kind must be one of {', '.join(KINDS)}; got {kind!r}")
        env = self.env
        serial = env.new_serialno("erratum") + 1
        anchor = f"erratum-{serial}"
        summary = self.arguments[0].strip()

        label = self.options.get("label", "").strip()
        box = nodes.admonition(classes=["erratum", "warning"], ids=[anchor] + ([label] if label
                                                                              else []))
        title_text = f"Erratum {serial}: {summary}"
        if label:  # {ref}`label` elsewhere in the book links here, titled "Erratum N"
            self.env.get_domain("std").note_hyperlink_target(  # type: ignore[attr-defined]
                label, env.docname, label, f"Erratum {serial}")
        textnodes, messages = self.state.inline_text(title_text, self.lineno)
        box += nodes.title(title_text, "", *textnodes)
        rows = nodes.field_list()
        source = nodes.reference("", post_label(post), refuri=post_url(post))
        for label, field in [("Post", "post"), ("Where", "where"), ("Kind", "kind"),
                             ("The post says", "says"), ("What holds", "holds"),
                             ("Shown by", "shows")]:
            if field == "post":
                body: list[nodes.Node] = [nodes.paragraph("", "", source)]
            else:
                inline, more = self.state.inline_text(self.options[field].strip(), self.lineno)
                messages += more
                body = [nodes.paragraph("", "", *inline)]
            rows += nodes.field("", nodes.field_name("", label), nodes.field_body("", *body))
        box += rows
        if self.content:
            self.state.nested_parse(self.content, self.content_offset, box)

        errata = getattr(env, "kexue_errata", [])
        errata.append({"docname": env.docname, "anchor": anchor, "serial": serial,
                       "summary": summary, "post": post, "kind": kind,
                       "where": self.options["where"].strip()})
        env.kexue_errata = errata  # type: ignore[attr-defined]
        return [box, *messages]


class ErrataTableDirective(SphinxDirective):
    def run(self) -> list[nodes.Node]:
        return [errata_table()]


def _purge(app: Sphinx, env: Any, docname: str) -> None:
    env.kexue_errata = [e for e in getattr(env, "kexue_errata", []) if e["docname"] != docname]


def _merge(app: Sphinx, env: Any, docnames: set[str], other: Any) -> None:
    env.kexue_errata = getattr(env, "kexue_errata", []) + [
        e for e in getattr(other, "kexue_errata", []) if e["docname"] in docnames]


def _fill(app: Sphinx, doctree: nodes.document, fromdocname: str) -> None:
    errata = sorted(getattr(app.env, "kexue_errata", []),
                    key=lambda e: (e["post"] == "wmathor", e["post"].zfill(5), e["serial"]))
    for node in doctree.findall(errata_table):
        titles = {e["docname"]: app.env.titles[e["docname"]].astext() for e in errata}
        rows = []
        for e in errata:
            uri = app.builder.get_relative_uri(fromdocname, e["docname"]) + "#" + e["anchor"]
            page = nodes.reference("", titles[e["docname"]], internal=True, refuri=uri)
            post = nodes.reference("", post_label(e["post"]), refuri=post_url(e["post"]))
            rows.append([post, page, e["kind"], e["summary"]])
        by_kind = Counter(e["kind"] for e in errata)
        by_post = Counter(e["post"] for e in errata)
        total = nodes.paragraph("", "", nodes.Text(
            f"{len(errata)} errata in {len(by_post)} posts, found on "
            f"{len({e['docname'] for e in errata})} pages."), classes=["errata-total"])
        kinds = table(["kind", "errata"], [[k, str(by_kind[k])] for k in KINDS], [4, 1],
                      "errata")
        posts = table(["post", "errata"],
                       [[nodes.reference("", post_label(p), refuri=post_url(p)), str(n)]
                       for p, n in sorted(by_post.items(), key=lambda x: x[0].zfill(5))],
                      [4, 1], "errata")
        listing = table(["post", "page", "kind", "erratum"], rows, [2, 3, 2, 6], "errata")
        section = [total, nodes.rubric("", "By kind"), kinds, nodes.rubric("", "By post"), posts,
                   nodes.rubric("", "Every erratum"), listing]
        node.replace_self(section)


def _always_rewrite_errata(app: Sphinx, env: Any, added: set[str], changed: set[str],
                           removed: set[str]) -> list[str]:
    """The errata page depends on every page: re-read it whenever the book is built."""
    return [d for d in env.found_docs if d.endswith("reference/errata")]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("erratum", ErratumDirective)
    app.add_directive("errata-table", ErrataTableDirective)
    app.add_node(errata_table)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("doctree-resolved", _fill)
    app.connect("env-get-outdated", _always_rewrite_errata)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
