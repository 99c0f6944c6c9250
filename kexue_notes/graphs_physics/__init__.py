"""Part "Graphs and physics" of the book (``book/graphs-physics/``): one module per page or theme.

In the part's reading order:

- :mod:`kexue_notes.graphs_physics.map_equation`: the map equation of Infomap.
- :mod:`kexue_notes.graphs_physics.rotating_rope`: the shape of a spinning rope (catenary,
  troposkien, three solvers, the whirling chain).
"""
