"""Part "Representations and similarity" of the book (``book/representations/``): one module per
page or theme.

In the part's reading order:

- :mod:`kexue_notes.representations.glove`: word vectors whose inner products fit pointwise mutual
  information.
- :mod:`kexue_notes.representations.dimension`: the entropy argument for the word-embedding
  dimension.
- :mod:`kexue_notes.representations.whitening`: BERT-whitening with hyperparameters.
- :mod:`kexue_notes.representations.geodesic`: geodesic distances on a k-nearest-neighbour graph.
- :mod:`kexue_notes.representations.unilm`: the UniLM attention mask and SimBERT's paired batches.
- :mod:`kexue_notes.representations.simcse`: dropout views and the NT-Xent form of SimCSE.
- :mod:`kexue_notes.representations.temperature`: how the temperature spreads the contrastive push
  over negatives.
- :mod:`kexue_notes.representations.gumbel`: Gumbel-max sampling, Gumbel-softmax and the Concrete
  density.
- :mod:`kexue_notes.representations.softmax`: iterated softmax and its fixed points.
"""
