"""Part "Sequences" of the book (``book/sequences/``): one module per page or theme.

In the part's reading order:

- :mod:`kexue_notes.sequences.ode_rnn`: Euler's method as an RNN, on the two-species competition
  model, and its fits by backpropagation through time and by least squares.
- :mod:`kexue_notes.sequences.exposure_bias`: cross-entropy's margin bounds, locally normalised
  table models, greedy and beam search against brute force, the post's counter-example and its
  region, random replacement of decoder inputs.
- :mod:`kexue_notes.sequences.char_decoder`: GRU language models on gensim's Lee corpus, batched
  over seeds, trained with teacher forcing or random replacement, and scored by beam completion.
- :mod:`kexue_notes.sequences.relative_position`: relative position biases, RoPE, attention with
  several normalisers and a URPE gate, and the position probe with its trained models.
"""
