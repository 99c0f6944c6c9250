"""Companion package of the kexue_notes book.

One module per theme; every public function names, in its docstring, the page and equation that
use it.

- :mod:`kexue_notes.diffusion`: DDPM's schedule, forward process, posterior and reverse step.
- :mod:`kexue_notes.diffusion_loss`: DDPM as a VAE: ELBO terms, the one- and two-noise losses.
- :mod:`kexue_notes.ddim`: DDIM and the reverse samplers.
- :mod:`kexue_notes.analytic_variance`: the optimal reverse variance (Analytic-DPM).
- :mod:`kexue_notes.mixtures`: Gaussian-mixture data, the exact denoiser, a two-sample distance.
- :mod:`kexue_notes.density`: importance-sampled likelihoods, probabilistic PCA as ground truth.
- :mod:`kexue_notes.bottleneck`: the VAE's KL term as an information bottleneck.
- :mod:`kexue_notes.gradient_normalization`: a Lipschitz critic by gradient normalization.
- :mod:`kexue_notes.graphs`: the map equation of Infomap.
- :mod:`kexue_notes.glove`: word vectors whose inner products fit pointwise mutual information.
- :mod:`kexue_notes.dimension`: the entropy argument for the word-embedding dimension.
- :mod:`kexue_notes.whitening`: BERT-whitening with hyperparameters.
- :mod:`kexue_notes.geodesic`: geodesic distances on a k-nearest-neighbour graph.
- :mod:`kexue_notes.unilm`: the UniLM attention mask and SimBERT's paired batches.
- :mod:`kexue_notes.contrastive`: the InfoNCE loss, its gradient, alignment and uniformity.
- :mod:`kexue_notes.simcse`: dropout views and the NT-Xent form of SimCSE.
- :mod:`kexue_notes.temperature`: how the temperature spreads the contrastive push over negatives.
- :mod:`kexue_notes.gumbel`: Gumbel-max sampling, Gumbel-softmax and the Concrete density.
- :mod:`kexue_notes.softmax`: iterated softmax and its fixed points.
- :mod:`kexue_notes.accumulation`: gradient accumulation, and optimizers with it built in.
- :mod:`kexue_notes.grad_cache`: exact gradient accumulation for contrastive losses.
- :mod:`kexue_notes.amos`: learning-rate and weight-decay schedules from the Amos idea.
- :mod:`kexue_notes.exponentiated_gradient`: exponentiated gradient and a meta-learned step size.
- :mod:`kexue_notes.sampling_optimization`: an update as the mean of a distribution over steps.
- :mod:`kexue_notes.gradient_estimators`: policy-gradient and zeroth-order gradient estimators.
- :mod:`kexue_notes.flooding`: flooding, its two-step gradient penalty, and the flood level.
- :mod:`kexue_notes.multitask`: weighting the losses of several tasks.
- :mod:`kexue_notes.plotting`: one shared figure style for the book.
"""

__version__ = "0.1.0"
