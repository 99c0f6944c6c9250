"""Companion package of the kexue_notes book.

One module per theme; every public function names, in its docstring, the page and equation that
use it.

- :mod:`kexue_notes.graphs`: the map equation of Infomap.
- :mod:`kexue_notes.diffusion`: DDPM forward process and posterior.
- :mod:`kexue_notes.whitening`: BERT-whitening with hyperparameters.
- :mod:`kexue_notes.dimension`: the entropy argument for the word-embedding dimension.
- :mod:`kexue_notes.plotting`: one shared figure style for the book.
"""

__version__ = "0.1.0"
