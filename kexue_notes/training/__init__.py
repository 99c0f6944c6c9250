"""Part "Training" of the book (``book/training/``): one module per page or theme.

The part's pages are still to be written; their modules will be listed here in reading order.
"""
