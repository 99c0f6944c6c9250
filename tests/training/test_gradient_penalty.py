"""Tests of kexue_notes.training.gradient_penalty: autograd, identities, and every error path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.testing import assert_close

from kexue_notes.training import gradient_penalty as gp

torch.set_num_threads(1)
F64 = torch.float64
HIDDEN = ["tanh", "relu", "gelu", "softplus", "sigmoid"]


def net(seed: int, widths=(3, 4, 2), acts=("tanh", "identity"), n: int | None = None,
        gain: float = 1.0):
    """A random network (one, or a batch of n) and an input."""
    Ws, bs = gp.random_mlps(list(widths), 1 if n is None else n, seed=seed, gain=gain)
    g = torch.Generator().manual_seed(seed + 1)
    if n is None:
        Ws, bs = [w[0] for w in Ws], [b[0] for b in bs]
        x = torch.randn(widths[0], generator=g, dtype=F64)
    else:
        x = torch.randn(n, widths[0], generator=g, dtype=F64)
    return Ws, bs, x, list(acts)


def autograd_grads(Ws, bs, x, acts, out_grad):
    Ws = [w.clone().requires_grad_(True) for w in Ws]
    bs = [b.clone().requires_grad_(True) for b in bs]
    x = x.clone().requires_grad_(True)
    h = x
    for W, b, a in zip(Ws, bs, acts, strict=True):
        h = gp.activation(a, W @ h + b)
    f = (h * out_grad).sum()
    grads = torch.autograd.grad(f, [*Ws, *bs, x])
    return grads[:len(Ws)], grads[len(Ws):-1], grads[-1]


# --- activations --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", gp.ACTIVATIONS)
def test_activation_derivative_matches_autograd(name: str) -> None:
    z = torch.linspace(-3, 3, 41, dtype=F64)[torch.arange(41) != 20]   # avoid relu's kink at 0
    zz = z.clone().requires_grad_(True)
    (ref,) = torch.autograd.grad(gp.activation(name, zz).sum(), zz)
    assert_close(gp.activation_derivative(name, z), ref, rtol=1e-14, atol=1e-15)


def test_activation_matches_torch_modules() -> None:
    z = torch.linspace(-2, 2, 9, dtype=F64)
    for name, mod in (("tanh", nn.Tanh()), ("relu", nn.ReLU()), ("gelu", nn.GELU()),
                      ("softplus", nn.Softplus()), ("sigmoid", nn.Sigmoid())):
        assert_close(gp.activation(name, z), mod(z), rtol=0, atol=0)
    assert_close(gp.activation("identity", z), z, rtol=0, atol=0)


def test_activation_errors() -> None:
    with pytest.raises(ValueError, match="name must be one of"):
        gp.activation("swish", torch.zeros(2))
    with pytest.raises(ValueError, match="name must be one of"):
        gp.activation_derivative(3, torch.zeros(2))
    with pytest.raises(ValueError, match="z must be finite"):
        gp.activation("tanh", torch.tensor([float("nan")]))


# --- forward, backward and Jacobians --------------------------------------------------------------

def test_forward_matches_to_sequential() -> None:
    Ws, bs, x, acts = net(0, (3, 5, 4, 2), ("gelu", "sigmoid", "identity"))
    out = gp.mlp_forward(Ws, bs, x, acts).hs[-1]
    assert_close(out, gp.to_sequential(Ws, bs, acts)(x), rtol=1e-15, atol=1e-15)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.lists(st.integers(1, 5), min_size=2, max_size=5),
       st.lists(st.sampled_from([*HIDDEN, "identity"]), min_size=4, max_size=4))
def test_gradients_and_identity_match_autograd(seed, widths, acts) -> None:
    acts = acts[:len(widths) - 1]
    Ws, bs, x, acts = net(seed, widths, acts, gain=1.5)
    out_grad = torch.randn(widths[-1], generator=torch.Generator().manual_seed(seed), dtype=F64)
    fwd = gp.mlp_forward(Ws, bs, x, acts)
    deltas = gp.backprop_deltas(Ws, fwd.zs, acts, out_grad)
    gW, gb, gx = autograd_grads(Ws, bs, x, acts, out_grad)
    for t in range(len(Ws)):
        assert_close(torch.outer(deltas[t], fwd.hs[t]), gW[t], rtol=1e-12, atol=1e-14)
        assert_close(deltas[t], gb[t], rtol=1e-12, atol=1e-14)
    T = gp.penalty_terms(Ws, bs, x, acts, out_grad)
    total = sum(float((g**2).sum()) for g in (*gW, *gb))
    assert math.isclose(float(T.param_grad_sq), total, rel_tol=1e-12, abs_tol=1e-300)
    assert math.isclose(float(T.input_grad_sq), float((gx**2).sum()), rel_tol=1e-12,
                        abs_tol=1e-300)
    # the inequality and each layer's ratio
    assert float(T.lhs) <= float(T.param_grad_sq) * (1 + 1e-12)
    assert float(T.layer_ratio.max()) <= 1 + 1e-12


def test_jacobians_match_jacrev() -> None:
    Ws, bs, x, acts = net(3, (3, 4, 5, 2), ("tanh", "softplus", "identity"))
    fwd = gp.mlp_forward(Ws, bs, x, acts)
    jacs = gp.input_jacobians(Ws, fwd.zs, acts)
    assert len(jacs) == 4
    assert_close(jacs[0], torch.eye(3, dtype=F64))
    for t in range(1, 4):
        ref = torch.func.jacrev(lambda xx, t=t: gp.mlp_forward(Ws, bs, xx, acts).hs[t])(x)
        assert_close(jacs[t], ref, rtol=1e-13, atol=1e-15)


def test_batched_equals_one_at_a_time() -> None:
    Ws, bs, x, acts = net(5, (4, 3, 3, 1), ("relu", "tanh", "identity"), n=6)
    T = gp.penalty_terms(Ws, bs, x, acts)
    for k in range(6):
        Tk = gp.penalty_terms([w[k] for w in Ws], [b[k] for b in bs], x[k], acts)
        assert_close(T.tightness[k], Tk.tightness, rtol=1e-14, atol=1e-15)
        assert_close(T.param_grad_sq[k], Tk.param_grad_sq, rtol=1e-14, atol=0)


def test_single_layer_scalar_output_is_tight() -> None:
    Ws, bs, x, acts = net(7, (6, 1), ("identity",), n=20, gain=2.0)
    T = gp.penalty_terms(Ws, bs, x, acts)
    assert_close(T.tightness, torch.ones(20, dtype=F64), rtol=0, atol=1e-14)


def test_tightness_is_weighted_mean_of_layer_ratios() -> None:
    Ws, bs, x, acts = net(11, (5, 4, 4, 1), ("gelu", "tanh", "identity"), n=8)
    T = gp.penalty_terms(Ws, bs, x, acts)
    w = (1 + T.h_sq) * T.delta_sq / T.param_grad_sq.unsqueeze(-1)
    assert_close(w.sum(-1), torch.ones(8, dtype=F64), rtol=0, atol=1e-14)
    assert_close((w * T.layer_ratio).sum(-1), T.tightness, rtol=1e-13, atol=1e-15)


def test_dead_relu_gives_zero_lhs() -> None:
    Ws = [torch.ones(2, 2, dtype=F64), torch.ones(1, 2, dtype=F64)]
    bs = [torch.full((2,), -10.0, dtype=F64), torch.zeros(1, dtype=F64)]
    T = gp.penalty_terms(Ws, bs, torch.zeros(2, dtype=F64), ["relu", "identity"])
    assert float(T.input_grad_sq) == 0 and float(T.lhs) == 0
    assert float(T.param_grad_sq) == 1.0          # only the output bias
    assert not bool(torch.isnan(T.layer_ratio).any())


def test_spectral_norm_matches_scipy() -> None:
    A = torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    ref = [scipy.linalg.svdvals(a.numpy())[0] for a in A]
    assert_close(gp.spectral_norm(A), torch.tensor(ref, dtype=F64), rtol=1e-14, atol=0)


def test_random_mlps_use_linear_init() -> None:
    Ws, bs = gp.random_mlps([16, 8, 1], 50, seed=0)
    assert [tuple(w.shape) for w in Ws] == [(50, 8, 16), (50, 1, 8)]
    assert [tuple(b.shape) for b in bs] == [(50, 8), (50, 1)]
    assert float(Ws[0].abs().max()) <= 1 / 4 and float(Ws[1].abs().max()) <= 8**-0.5
    # variance 1/(3 fan_in) of the uniform init, to a few standard errors
    assert abs(float(Ws[0].var()) * 3 * 16 - 1) < 0.1
    with torch.random.fork_rng():
        torch.manual_seed(0)
        lin = nn.Linear(16, 50 * 8, dtype=F64)
    assert_close(Ws[0], lin.weight.detach().reshape(50, 8, 16), rtol=0, atol=0)
    state = torch.random.get_rng_state()
    gp.random_mlps([2, 2], 1, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())      # global state untouched
    Wg, _ = gp.random_mlps([16, 8, 1], 50, seed=0, gain=2.0)
    assert_close(Wg[0], 2 * Ws[0], rtol=0, atol=0)


def test_noise_penalty_monte_carlo() -> None:
    Ws, bs, x, acts = net(2, (3, 5, 2), ("tanh", "identity"), gain=2.0)
    fwd = gp.mlp_forward(Ws, bs, x, acts)
    J = gp.input_jacobians(Ws, fwd.zs, acts)[-1]
    sigma = 1e-2
    eps = sigma * torch.randn(40000, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    sq = ((gp.mlp_forward(Ws, bs, x + eps, acts).hs[-1] - fwd.hs[-1]) ** 2).sum(-1)
    se = float(sq.std()) / 200
    assert abs(float(sq.mean()) - float(gp.noise_penalty(J, sigma))) < 4 * se
    assert_close(gp.noise_penalty(J, sigma, torch.full((2,), 2.0, dtype=F64)),
                 gp.noise_penalty(J, sigma))
    assert_close(gp.noise_penalty(J, 0.5, torch.tensor([1.0, 0.0], dtype=F64)),
                 0.125 * (J[0] ** 2).sum())


# --- errors --------------------------------------------------------------------------------------

def test_network_errors() -> None:
    Ws, bs, x, acts = net(0)
    with pytest.raises(ValueError, match="weights must be a non-empty"):
        gp.mlp_forward([], bs, x, acts)
    with pytest.raises(ValueError, match="weights must be a non-empty"):
        gp.mlp_forward(Ws[0], bs, x, acts)
    with pytest.raises(ValueError, match=r"weights\[0\] must have shape"):
        gp.mlp_forward([torch.zeros(3, dtype=F64), Ws[1]], bs, x, acts)
    with pytest.raises(ValueError, match=r"weights\[1\] takes"):
        gp.mlp_forward([Ws[0], torch.zeros(2, 3, dtype=F64)], bs, x, acts)
    with pytest.raises(ValueError, match="biases must be a sequence"):
        gp.mlp_forward(Ws, bs[:1], x, acts)
    with pytest.raises(ValueError, match=r"biases\[1\] must have shape"):
        gp.mlp_forward(Ws, [bs[0], torch.zeros(5, dtype=F64)], x, acts)
    with pytest.raises(ValueError, match="activations must be a sequence"):
        gp.mlp_forward(Ws, bs, x, "tanh")
    with pytest.raises(ValueError, match=r"activations\[1\] must be one of"):
        gp.mlp_forward(Ws, bs, x, ["tanh", "elu"])
    with pytest.raises(ValueError, match="x must have shape"):
        gp.mlp_forward(Ws, bs, torch.zeros(4, dtype=F64), acts)
    with pytest.raises(ValueError, match="x must be finite"):
        gp.mlp_forward(Ws, bs, torch.full((3,), float("inf"), dtype=F64), acts)
    with pytest.raises(ValueError, match=r"weights\[0\] must be finite"):
        gp.penalty_terms([Ws[0] * float("nan"), Ws[1]], bs, x, acts)


def test_backprop_and_jacobian_errors() -> None:
    Ws, bs, x, acts = net(0)
    zs = gp.mlp_forward(Ws, bs, x, acts).zs
    with pytest.raises(ValueError, match="zs must be a sequence"):
        gp.backprop_deltas(Ws, zs[:1], acts, torch.ones(2, dtype=F64))
    with pytest.raises(ValueError, match=r"zs\[0\] must have shape"):
        gp.input_jacobians(Ws, [torch.zeros(3, dtype=F64), zs[1]], acts)
    with pytest.raises(ValueError, match="out_grad must have shape"):
        gp.backprop_deltas(Ws, zs, acts, torch.ones(3, dtype=F64))
    with pytest.raises(ValueError, match="out_grad must have shape"):
        gp.penalty_terms(Ws, bs, x, acts, torch.ones(3, dtype=F64))
    with pytest.raises(ValueError, match="activations must be a sequence"):
        gp.input_jacobians(Ws, zs, ["tanh"])


def test_other_errors() -> None:
    with pytest.raises(ValueError, match="A must have shape"):
        gp.spectral_norm(torch.zeros(3, dtype=F64))
    with pytest.raises(ValueError, match="widths must be a sequence"):
        gp.random_mlps([3], 2, seed=0)
    with pytest.raises(ValueError, match=r"widths\[1\] must be >= 1"):
        gp.random_mlps([3, 0], 2, seed=0)
    with pytest.raises(TypeError, match=r"widths\[0\] must be an integer"):
        gp.random_mlps([3.0, 2], 2, seed=0)
    with pytest.raises(ValueError, match="n must be >= 1"):
        gp.random_mlps([3, 2], 0, seed=0)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        gp.random_mlps([3, 2], 1, seed=-1)
    with pytest.raises(ValueError, match="gain must be"):
        gp.random_mlps([3, 2], 1, seed=0, gain=0.0)
    Ws, bs = gp.random_mlps([3, 2], 2, seed=0)
    with pytest.raises(ValueError, match=r"weights\[0\] must be 2-D"):
        gp.to_sequential(Ws, bs, ["identity"])
    J = torch.ones(2, 3, dtype=F64)
    with pytest.raises(ValueError, match="jac must have shape"):
        gp.noise_penalty(torch.ones(3, dtype=F64), 0.1)
    with pytest.raises(ValueError, match="sigma must be"):
        gp.noise_penalty(J, 0.0)
    with pytest.raises(ValueError, match="curvature must have shape"):
        gp.noise_penalty(J, 0.1, torch.ones(3, dtype=F64))
    with pytest.raises(ValueError, match="curvature must be non-negative"):
        gp.noise_penalty(J, 0.1, torch.tensor([1.0, -1.0], dtype=F64))
    assert np.isfinite(float(gp.noise_penalty(J, 0.1)))
