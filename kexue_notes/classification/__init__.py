"""Part "Classification" of the book (``book/classification/``): one module per page or theme.

In the part's reading order:

- :mod:`kexue_notes.classification.can`: top-k uncertainty, the alternating normalisation of CAN,
  its one-round closed form and its Sinkhorn fixed point.
"""
