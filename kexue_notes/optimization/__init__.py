"""Part "Optimization" of the book (``book/optimization/``): one module per page or theme.

In the part's reading order:

- :mod:`kexue_notes.optimization.accumulation`: gradient accumulation, and optimizers with it built
  in.
- :mod:`kexue_notes.optimization.grad_cache`: exact gradient accumulation for contrastive losses.
- :mod:`kexue_notes.optimization.amos`: learning-rate and weight-decay schedules from the Amos idea.
- :mod:`kexue_notes.optimization.exponentiated_gradient`: exponentiated gradient and a meta-learned
  step size.
- :mod:`kexue_notes.optimization.sampling_optimization`: an update as the mean of a distribution
  over steps.
- :mod:`kexue_notes.optimization.gradient_estimators`: policy-gradient and zeroth-order gradient
  estimators.
- :mod:`kexue_notes.optimization.flooding`: flooding, its two-step gradient penalty, and the flood
  level.
- :mod:`kexue_notes.optimization.multitask`: weighting the losses of several tasks.
"""
