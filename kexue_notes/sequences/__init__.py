"""Part "Sequences" of the book (``book/sequences/``): one module per page or theme.

In the part's reading order:

- :mod:`kexue_notes.sequences.ode_rnn`: Euler's method as an RNN, on the two-species competition
  model, and its fits by backpropagation through time and by least squares.
- :mod:`kexue_notes.sequences.relative_position`: relative position biases, RoPE, attention with
  several normalisers and a URPE gate, and the position probe with its trained models.
"""
