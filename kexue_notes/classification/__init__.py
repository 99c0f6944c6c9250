"""Part "Classification" of the book (``book/classification/``): one module per page or theme.

The part's pages are still to be written; their modules will be listed here in reading order.
"""
