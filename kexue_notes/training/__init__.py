"""Part "Training" of the book (``book/training/``): one module per page.

In the part's reading order:

- :mod:`kexue_notes.training.initialization`: variance factors of initialisers, moments of
  activations, SELU's constants, normalisation layers and residual recursions.
- :mod:`kexue_notes.training.fan_means`: means of a layer's fan dimensions and how they compound
  over depth.
- :mod:`kexue_notes.training.batchnorm_lipschitz`: the Lipschitz constant of a logistic loss's
  gradient, batch normalisation's backward pass, and gradient descent at step 1/L.
- :mod:`kexue_notes.training.weight_scale_shift`: weight-scale shifts of a ReLU network, L2 against
  weight decay, and the scale-invariant penalty WEISSI.
- :mod:`kexue_notes.training.gradient_penalty`: input- and parameter-gradient penalties of an MLP,
  and the inequality between them.
- :mod:`kexue_notes.training.adversarial`: FGSM, FGM and PGD perturbations, and adversarial training
  on an embedding.
- :mod:`kexue_notes.training.child_tuning`: gradient dropout, the Fisher mask of ChildTuning-D, and
  the moments of Adam's long-run update.
"""
