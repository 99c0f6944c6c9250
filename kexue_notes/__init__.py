"""Companion package of the kexue_notes book.

The package mirrors the book: one subpackage per part, named after the part's folder under ``book/``
(``book/graphs-physics/`` is :mod:`kexue_notes.graphs_physics`), holding one module per page or
theme. Every public function names, in its docstring, the page and equation that use it.

Parts, in the book's order:

- :mod:`kexue_notes.diffusion`: diffusion and latent-variable models.
- :mod:`kexue_notes.representations`: representations and similarity.
- :mod:`kexue_notes.optimization`: optimization.
- :mod:`kexue_notes.training`: training (initialisation, normalisation, regularisation).
- :mod:`kexue_notes.sequences`: sequences.
- :mod:`kexue_notes.classification`: classification.
- :mod:`kexue_notes.graphs_physics`: graphs and physics.

Shared by several parts:

- :mod:`kexue_notes.contrastive`: the InfoNCE loss, its gradient, alignment and uniformity.
- :mod:`kexue_notes.plotting`: one shared figure style for the book.
- ``kexue_notes._validate``: the input checks every module uses (bad input raises, naming the
  argument).
"""

__version__ = "0.1.0"
