"""Part "Graphs and physics" of the book (``book/graphs-physics/``): one module per page or theme.

In the part's reading order:

- :mod:`kexue_notes.graphs_physics.map_equation`: the map equation of Infomap.
"""
