"""Part "Classification" of the book (``book/classification/``): one module per page or theme.

In the part's reading order:

- :mod:`kexue_notes.classification.class_imbalance`: smoothed accuracy and F1, class- and
  F1-weighted cross-entropy, logit adjustment and territory margins, their population thresholds,
  and a linear trainer for several seeds at once.
- :mod:`kexue_notes.classification.can`: top-k uncertainty, the alternating normalisation of CAN,
  its one-round closed form and its Sinkhorn fixed point.
- :mod:`kexue_notes.classification.label_denoising`: the LLD pair penalty and its gradient,
  symmetric label noise, a batched linear-head trainer and the two-point toy's thresholds.
- :mod:`kexue_notes.classification.y_tuning`: the hinge and temperature-scaled cross-entropy, a
  label-side attention head on frozen MiniLM token states, and a linear probe.
- :mod:`kexue_notes.classification.devils_advocate`: the Devil's Advocate loss on random wrong
  labels, its optimum on the simplex, the additive-margin softmax it induces, soft voting and the
  paper's decision rule, and a batched two-phase MLP trainer.
- :mod:`kexue_notes.classification.aeda`: AEDA's punctuation insertion as the reference code does
  it, and the exact law of its output (moments, number of outcomes, collision probability,
  enumeration).
- :mod:`kexue_notes.classification.selective_augmentation`: word roles for selective text
  augmentation (label correlation and similarity scores), closed forms for edits, and the EDA- and
  STA-style edit operations.
- :mod:`kexue_notes.classification.virtual_augmentation`: virtual embeddings as noisy mixtures of
  the embedding matrix, top-k truncation and its exact error, the delta-method covariance of the
  noise, and the symmetric KL consistency loss and its gradient.
- :mod:`kexue_notes.classification.mlm_alternatives`: the labels of five token-level alternatives
  to masked-language modelling, their noise rates and entropy floors, head and encoder sizes, and a
  tiny ``nn.TransformerEncoderLayer`` encoder with its pre-training loop.

Shared by the part's experiments:

- :mod:`kexue_notes.classification.splits`: random training subsets stratified by label (a count
  or a fraction of every class).
"""
