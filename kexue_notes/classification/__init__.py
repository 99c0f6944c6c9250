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
"""
