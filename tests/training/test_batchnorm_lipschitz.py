"""Tests of kexue_notes.training.batchnorm_lipschitz: closed forms, identities, error paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from kexue_notes.training import batchnorm_lipschitz as bl

torch.set_num_threads(1)
F64 = torch.float64


def data(seed: int, n: int = 40, d: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * rng.uniform(0.5, 3, size=d) + rng.normal(size=d) * 3


def logistic_loss(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits = X @ theta[:-1] + theta[-1]
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, y)


# --- descent_bound -------------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(st.floats(0.1, 10), st.floats(-5, 5), st.floats(0, 1))
def test_descent_bound_is_exact_for_a_quadratic(L: float, theta: float, frac: float) -> None:
    eta = 2 * frac / L
    f = 0.5 * L * theta**2
    g = L * theta
    after = 0.5 * L * (theta - eta * g) ** 2
    assert float(bl.descent_bound(f, g**2, L, eta)) == pytest.approx(after, rel=1e-12, abs=1e-12)


def test_descent_bound_errors() -> None:
    with pytest.raises(ValueError, match="grad_sq_norm"):
        bl.descent_bound(1.0, -1.0, 1.0, 0.1)
    with pytest.raises(ValueError, match="lipschitz"):
        bl.descent_bound(1.0, 1.0, 0.0, 0.1)
    with pytest.raises(ValueError, match="lr"):
        bl.descent_bound(1.0, 1.0, 1.0, -0.1)
    with pytest.raises(ValueError, match="value"):
        bl.descent_bound(float("nan"), 1.0, 1.0, 0.1)
    with pytest.raises(TypeError, match="value"):
        bl.descent_bound("a", 1.0, 1.0, 0.1)


# --- second_moment, logistic_lipschitz, trace_bound ---------------------------------------------

def test_second_moment_at_the_mean_is_the_covariance() -> None:
    X = data(0)
    M = bl.second_moment(X, X.mean(0))
    assert_allclose(M[:-1, :-1], np.cov(X.T, bias=True), rtol=1e-12, atol=1e-12)
    assert_allclose(M[-1], np.r_[np.zeros(3), 1.0], atol=1e-12)
    assert bl.second_moment(X, bias=False).shape == (3, 3)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10**6), st.lists(st.floats(-5, 5), min_size=3, max_size=3))
def test_centring_minimises_both_bounds(seed: int, shift: list[float]) -> None:
    X = data(seed)
    mean = X.mean(0)
    mu = np.asarray(shift)
    # tr M(mu) = tr M(mean) + |mean - mu|^2 (bias-variance), and lambda_max is smallest at the mean
    assert bl.trace_bound(X, mu) == pytest.approx(
        bl.trace_bound(X, mean) + np.sum((mean - mu) ** 2) / 4, rel=1e-10)
    assert bl.logistic_lipschitz(X, mu) >= bl.logistic_lipschitz(X, mean) * (1 - 1e-12)
    assert bl.logistic_lipschitz(X, mu) <= bl.trace_bound(X, mu) * (1 + 1e-12)


def test_logistic_lipschitz_is_the_hessian_norm_at_zero() -> None:
    X = data(1)
    Xt = torch.tensor(X)
    y = torch.tensor((X[:, 0] > X[:, 0].mean()).astype(float))
    H = torch.autograd.functional.hessian(lambda th: logistic_loss(th, Xt, y),
                                          torch.zeros(4, dtype=F64))
    assert float(torch.linalg.eigvalsh(H)[-1]) == pytest.approx(bl.logistic_lipschitz(X),
                                                                rel=1e-12)
    # elsewhere the Hessian is smaller
    theta = torch.tensor([0.3, -0.2, 0.1, 0.5], dtype=F64)
    H1 = torch.autograd.functional.hessian(lambda th: logistic_loss(th, Xt, y), theta)
    assert float(torch.linalg.eigvalsh(H1)[-1]) < bl.logistic_lipschitz(X)


def test_moment_errors() -> None:
    X = data(2)
    with pytest.raises(ValueError, match="X"):
        bl.second_moment(X[0])
    with pytest.raises(ValueError, match="X"):
        bl.second_moment(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="shift"):
        bl.logistic_lipschitz(X, np.zeros(2))
    with pytest.raises(ValueError, match="X"):
        bl.trace_bound(np.full((3, 2), np.nan))
    with pytest.raises(TypeError, match="X"):
        bl.second_moment("X")


# --- gd_logistic --------------------------------------------------------------------------------

def test_gd_logistic_matches_a_plain_linear_layer() -> None:
    X = data(3)
    y = (X[:, 1] > X[:, 1].mean()).astype(float)
    lrs = [0.05, 0.2]
    out = bl.gd_logistic(np.stack([X, X]), np.stack([y, y]), lrs, 20)
    assert out["loss"].shape == (21, 2) and out["grad_sq"].shape == (20, 2)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    for r, lr in enumerate(lrs):
        lin = torch.nn.Linear(3, 1).double()
        torch.nn.init.zeros_(lin.weight)
        torch.nn.init.zeros_(lin.bias)
        opt = torch.optim.SGD(lin.parameters(), lr=lr)
        for _ in range(20):
            opt.zero_grad()
            torch.nn.functional.binary_cross_entropy_with_logits(lin(Xt).squeeze(-1), yt).backward()
            opt.step()
        final = torch.nn.functional.binary_cross_entropy_with_logits(lin(Xt).squeeze(-1), yt)
        assert float(out["loss"][-1, r]) == pytest.approx(float(final.detach()), rel=1e-12)


def test_gd_logistic_obeys_the_descent_lemma_at_one_over_L() -> None:
    X = data(4)
    y = (X[:, 2] > X[:, 2].mean()).astype(float)
    L = bl.logistic_lipschitz(X)
    out = bl.gd_logistic(X[None], y[None], [1 / L], 50)
    drop = out["loss"][:-1, 0] - out["loss"][1:, 0]
    assert bool((drop >= out["grad_sq"][:, 0] / (2 * L) * (1 - 1e-9)).all())
    nb = bl.gd_logistic(X[None], y[None], [1 / bl.logistic_lipschitz(X, bias=False)], 5,
                        bias=False)
    assert nb["loss"].shape == (6, 1)


def test_gd_logistic_errors() -> None:
    X = data(5)[None]
    y = np.zeros((1, 40))
    with pytest.raises(ValueError, match="X"):
        bl.gd_logistic(X[0], y, [0.1], 2)
    with pytest.raises(ValueError, match="y"):
        bl.gd_logistic(X, y[:, :3], [0.1], 2)
    with pytest.raises(ValueError, match="y"):
        bl.gd_logistic(X, y + 0.5, [0.1], 2)
    with pytest.raises(ValueError, match="lr"):
        bl.gd_logistic(X, y, [0.0], 2)
    with pytest.raises(ValueError, match="lr"):
        bl.gd_logistic(X, y, [0.1, 0.1], 2)
    with pytest.raises(ValueError, match="steps"):
        bl.gd_logistic(X, y, [0.1], 0)
    with pytest.raises(TypeError, match="steps"):
        bl.gd_logistic(X, y, [0.1], 2.0)


# --- batch norm backward -------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(st.integers(2, 20), st.integers(1, 4), st.integers(0, 10**6),
       st.sampled_from([1e-5, 1e-3, 0.1]))
def test_batchnorm_input_grad_matches_torch(m: int, C: int, seed: int, eps: float) -> None:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(m, C, generator=gen, dtype=F64) * 2 + 1
    g = torch.randn(m, C, generator=gen, dtype=F64)
    gamma = torch.randn(C, generator=gen, dtype=F64)
    bn = torch.nn.BatchNorm1d(C, eps=eps, momentum=None).double()
    with torch.no_grad():
        bn.weight.copy_(gamma)
    zz = z.clone().requires_grad_(True)
    bn(zz).backward(g)
    assert zz.grad is not None
    mine = bl.batchnorm_input_grad(z, g, gamma, eps=eps)
    atol = 1e-9 * float(g.abs().max()) / eps**0.5
    torch.testing.assert_close(mine, zz.grad, rtol=1e-9, atol=atol)


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 30), st.integers(1, 3), st.integers(0, 10**6))
def test_batchnorm_gradient_is_a_projection(m: int, C: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(m, C, generator=gen, dtype=F64)
    g = torch.randn(m, C, generator=gen, dtype=F64)
    grad = bl.batchnorm_input_grad(z, g, 1.5)
    yhat = (z - z.mean(0)) / z.std(0, unbiased=False)
    scale = float(g.abs().max() / z.std(0, unbiased=False).min())
    assert float(grad.sum(0).abs().max()) < 1e-10 * m * scale
    assert float((grad * yhat).sum(0).abs().max()) < 1e-10 * m * scale
    torch.testing.assert_close(bl.batchnorm_grad_norm_sq(z, g, 1.5), (grad**2).sum(0),
                               rtol=1e-9, atol=1e-12)
    # projecting twice changes nothing: the bracket applied to its own output
    proj = grad * z.std(0, unbiased=False) / 1.5
    torch.testing.assert_close(bl.batchnorm_input_grad(z, proj, 1.0) * z.std(0, unbiased=False),
                               proj, rtol=1e-8, atol=1e-10 * scale)


def test_batchnorm_errors() -> None:
    z = torch.randn(5, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    g = torch.ones(5, 2, dtype=F64)
    with pytest.raises(ValueError, match="z"):
        bl.batchnorm_input_grad(z[:1], g[:1])
    with pytest.raises(ValueError, match="z"):
        bl.batchnorm_input_grad(z[:, 0], g[:, 0])
    with pytest.raises(ValueError, match="grad_out"):
        bl.batchnorm_input_grad(z, g[:4])
    with pytest.raises(ValueError, match="gamma"):
        bl.batchnorm_grad_norm_sq(z, g, torch.ones(3))
    with pytest.raises(ValueError, match="eps"):
        bl.batchnorm_input_grad(z, g, eps=-1.0)
    const = torch.ones(5, 2, dtype=F64)
    with pytest.raises(ValueError, match="z"):
        bl.batchnorm_input_grad(const, g)
    with pytest.raises(ValueError, match="z"):
        bl.batchnorm_grad_norm_sq(const, g)
    assert bool(torch.isfinite(bl.batchnorm_input_grad(const, g, eps=1e-5)).all())
    with pytest.raises(ValueError, match="z"):
        bl.batchnorm_input_grad(torch.full((5, 2), float("nan")), g)


# --- the small network ----------------------------------------------------------------------------

def toy() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    X = torch.randn(30, 4, generator=gen, dtype=F64)
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).to(F64)


def test_bn_mlp_layouts_and_seeding() -> None:
    kinds = {p: [type(m).__name__ for m in bl.bn_mlp(p, 4, 6, 0)] for p in bl.PLACEMENTS}
    assert kinds["none"] == ["Linear", "ReLU", "Linear"]
    assert kinds["after"] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert kinds["before"] == ["Linear", "ReLU", "BatchNorm1d", "Linear"]
    state = torch.random.get_rng_state()
    a, b = bl.bn_mlp("after", 4, 6, 3), bl.bn_mlp("before", 4, 6, 3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a[0].weight, b[0].weight) and a[0].weight.dtype == F64
    with pytest.raises(ValueError, match="placement"):
        bl.bn_mlp("middle", 4, 6, 0)
    with pytest.raises(ValueError, match="hidden"):
        bl.bn_mlp("none", 4, 0, 0)
    with pytest.raises(ValueError, match="seed"):
        bl.bn_mlp("none", 4, 6, -1)
    with pytest.raises(TypeError, match="n_in"):
        bl.bn_mlp("none", 4.0, 6, 0)


@pytest.mark.parametrize("placement", bl.PLACEMENTS)
def test_hessian_norm_matches_the_dense_hessian(placement: str) -> None:
    X, y = toy()
    model = bl.bn_mlp(placement, 4, 3, 1)
    params = list(model.parameters())
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]
    names = [n for n, _ in model.named_parameters()]
    flat0 = torch.cat([p.detach().reshape(-1) for p in params])

    def loss(flat: torch.Tensor) -> torch.Tensor:
        ps = {n: t.reshape(s) for n, t, s in zip(names, torch.split(flat, sizes), shapes,
                                                    strict=True)}
        out = torch.func.functional_call(model, ps, (X,)).squeeze(-1)
        return torch.nn.functional.binary_cross_entropy_with_logits(out, y)

    H = torch.autograd.functional.hessian(loss, flat0)
    dense = float(torch.linalg.eigvalsh(H).abs().max())
    assert bl.hessian_norm(model, X, y) == pytest.approx(dense, rel=1e-7)


def test_train_full_batch_descends_and_errors() -> None:
    X, y = toy()
    hist = bl.train_full_batch(bl.bn_mlp("before", 4, 5, 0), X, y, 0.1, 30)
    assert hist.shape == (31,) and float(hist[-1]) < float(hist[0])
    model = bl.bn_mlp("none", 4, 5, 0)
    with pytest.raises(ValueError, match="lr"):
        bl.train_full_batch(model, X, y, 0.0, 3)
    with pytest.raises(ValueError, match="steps"):
        bl.train_full_batch(model, X, y, 0.1, 0)
    with pytest.raises(ValueError, match="y"):
        bl.train_full_batch(model, X, y[:5], 0.1, 3)
    with pytest.raises(ValueError, match="y"):
        bl.hessian_norm(model, X, y * 2)
    with pytest.raises(ValueError, match="X"):
        bl.hessian_norm(model, X[0], y)
    with pytest.raises(ValueError, match="tol"):
        bl.hessian_norm(model, X, y, tol=0.0)
