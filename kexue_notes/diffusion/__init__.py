"""Part "Diffusion and latent-variable models" of the book (``book/diffusion/``): one module per
page or theme.

In the part's reading order:

- :mod:`kexue_notes.diffusion.schedule`: the noise schedule, and the input checks the part's modules
  share.
- :mod:`kexue_notes.diffusion.ddpm`: DDPM's forward process, posterior and reverse step.
- :mod:`kexue_notes.diffusion.diffusion_loss`: DDPM as a VAE: ELBO terms, the one- and two-noise
  losses.
- :mod:`kexue_notes.diffusion.mixtures`: Gaussian-mixture data, the exact denoiser, a two-sample
  distance.
- :mod:`kexue_notes.diffusion.ddim`: DDIM and the reverse samplers.
- :mod:`kexue_notes.diffusion.analytic_variance`: the optimal reverse variance (Analytic-DPM).
- :mod:`kexue_notes.diffusion.density`: importance-sampled likelihoods, probabilistic PCA as ground
  truth.
- :mod:`kexue_notes.diffusion.bottleneck`: the VAE's KL term as an information bottleneck.
- :mod:`kexue_notes.diffusion.gradient_normalization`: a Lipschitz critic by gradient normalization.
"""
