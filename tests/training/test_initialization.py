"""Tests of kexue_notes.training.initialization: closed forms, library cross-checks, error paths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from kexue_notes.training import initialization as ini

torch.set_num_threads(1)
F64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- sampling laws -------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.floats(-5, 5), st.floats(0.01, 5))
def test_uniform_bounds_give_mean_and_variance(mu: float, sd: float) -> None:
    a, b = ini.uniform_bounds(mu, sd)
    assert math.isclose((a + b) / 2, mu, rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose((b - a) ** 2 / 12, sd**2, rel_tol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.floats(-4, 1), st.floats(0.05, 4))
def test_truncnorm_factor_matches_scipy(lo: float, width: float) -> None:
    hi = lo + width
    # deep in a tail Z = Phi(b) - Phi(a) loses digits to cancellation (documented): 1e-7 suffices
    assert math.isclose(ini.truncated_normal_variance_factor(lo, hi),
                        scipy.stats.truncnorm(lo, hi).var(), rel_tol=1e-7)


def test_truncnorm_factor_limits_and_value() -> None:
    assert math.isclose(ini.truncated_normal_variance_factor(-2, 2), 0.7737413035499232,
                        rel_tol=1e-14)
    assert ini.truncated_normal_variance_factor(-math.inf, math.inf) == 1.0
    assert math.isclose(ini.truncated_normal_variance_factor(0, math.inf), 1 - 2 / math.pi,
                        rel_tol=1e-14)                         # half-normal
    c = 1e-3
    assert math.isclose(ini.truncated_normal_variance_factor(-c, c), c**2 / 3, rel_tol=1e-5)
    assert math.isclose(ini.truncated_normal_std_correction(2.0), 1.136847234, rel_tol=1e-9)


def test_trunc_normal_effective_std_matches_torch() -> None:
    assert ini.trunc_normal_effective_std(0.02) == 0.02
    w = torch.empty(400_000, dtype=F64)
    torch.nn.init.trunc_normal_(w, mean=0.1, std=1.0, a=-0.5, b=1.5, generator=gen(1))
    # a sample sd at n = 4e5 has relative error about 0.1 %
    assert math.isclose(float(w.std()), ini.trunc_normal_effective_std(1.0, -0.5, 1.5, mean=0.1),
                        rel_tol=5e-3)


def test_sampling_errors() -> None:
    with pytest.raises(ValueError, match="std"):
        ini.uniform_bounds(0.0, 0.0)
    with pytest.raises(TypeError, match="mean"):
        ini.uniform_bounds("0", 1.0)
    with pytest.raises(ValueError, match="upper"):
        ini.truncated_normal_variance_factor(1.0, 1.0)
    with pytest.raises(ValueError, match="lower"):
        ini.truncated_normal_variance_factor(float("nan"), 1.0)
    with pytest.raises(TypeError, match="upper"):
        ini.truncated_normal_variance_factor(0.0, None)
    with pytest.raises(ValueError, match="no mass"):
        ini.truncated_normal_variance_factor(50.0, 60.0)
    with pytest.raises(ValueError, match="bound"):
        ini.truncated_normal_std_correction(-1.0)
    with pytest.raises(ValueError, match="b must be"):
        ini.trunc_normal_effective_std(1.0, a=1.0, b=0.0)
    with pytest.raises(ValueError, match="std"):
        ini.trunc_normal_effective_std(-1.0)


# --- moments of activations ----------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(st.floats(0.1, 10))
def test_gaussian_expectation_of_polynomials(v: float) -> None:
    assert math.isclose(ini.gaussian_expectation(lambda t: t * t, v), v, rel_tol=1e-10)
    assert math.isclose(ini.gaussian_expectation(lambda t: t**4, v), 3 * v * v, rel_tol=1e-10)
    assert math.isclose(ini.gaussian_expectation(lambda t: max(t, 0.0) ** 2, v), v / 2,
                        rel_tol=1e-10)


def test_gains() -> None:
    assert math.isclose(ini.second_moment_gain(lambda t: t), 1.0, rel_tol=1e-12)
    assert math.isclose(ini.second_moment_gain(lambda t: max(t, 0.0)), math.sqrt(2), rel_tol=1e-12)
    sig2 = ini.gaussian_expectation(lambda t: 1 / (1 + math.exp(-t)) ** 2)
    assert math.isclose(sig2, 0.293379035858, rel_tol=1e-10)


def test_selu_constants_match_torch_and_moments() -> None:
    lam, alpha = ini.selu_constants()
    assert math.isclose(lam, 1.0507009873554804934193349852946, rel_tol=1e-14)
    assert math.isclose(alpha, 1.6732632423543772848170429916717, rel_tol=1e-14)
    m1, m2 = ini.selu_moments(lam, alpha)
    assert abs(m1) < 1e-14 and abs(m2 - 1) < 1e-14
    # the closed-form moments against quadrature, at other constants
    for la, al in ((1.0, 1.0), (2.0, 0.5)):
        def f(t: float, la: float = la, al: float = al) -> float:
            return la * (t if t > 0 else al * math.expm1(t))
        q1 = ini.gaussian_expectation(f)
        q2 = ini.gaussian_expectation(lambda t, f=f: f(t) ** 2)
        assert np.allclose(ini.selu_moments(la, al), (q1, q2), rtol=1e-10, atol=1e-12)
    x = torch.linspace(-5, 5, 1001, dtype=F64)
    assert_close(lam * torch.nn.functional.elu(x, alpha), torch.nn.SELU()(x), rtol=0, atol=1e-14)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
def test_activation_errors() -> None:
    with pytest.raises(TypeError, match="fn"):
        ini.gaussian_expectation(3.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="variance"):
        ini.gaussian_expectation(lambda t: t, 0.0)
    with pytest.raises(ValueError, match="fn"):
        ini.gaussian_expectation(lambda t: math.inf)
    with pytest.raises(TypeError, match="fn"):
        ini.second_moment_gain(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fn"):
        ini.second_moment_gain(lambda t: 0.0)
    with pytest.raises(ValueError, match="scale"):
        ini.selu_moments(0.0, 1.0)
    with pytest.raises(ValueError, match="alpha"):
        ini.selu_moments(1.0, -1.0)


# --- the ReLU MLP --------------------------------------------------------------------------------

def test_relu_ratio_closed_form() -> None:
    assert ini.relu_second_moment_ratio(10, 2.0) == 1.0
    assert ini.relu_second_moment_ratio(10, 1.0) == 2.0**-10
    assert ini.relu_second_moment_ratio(0, 3.0) == 1.0


def test_relu_mlp_mean_over_seeds() -> None:
    x = torch.randn(64, 32, generator=gen(0), dtype=F64).abs()        # non-negative inputs
    q = torch.stack([ini.relu_mlp_second_moments(x, 4, 512, "lecun", gen(s)) for s in range(20)])
    ratio = (q[:, -1] / q[:, 0]).mean()
    # 3 ReLU layers: (1/2)^3; per-layer relative sd sqrt(5/512) ~ 0.1, 20 seeds: ~ 4 % on the mean
    assert abs(float(ratio) / 0.125 - 1) < 0.2
    he = ini.relu_mlp_second_moments(x, 4, 512, "he", gen(3))
    le = ini.relu_mlp_second_moments(x, 4, 512, "lecun", gen(3))
    assert_close(he / le, torch.tensor([1.0, 1.0, 2.0, 4.0, 8.0], dtype=F64), rtol=1e-12, atol=0)


def test_relu_errors() -> None:
    x = torch.ones(3, 4)
    with pytest.raises(ValueError, match="depth"):
        ini.relu_second_moment_ratio(-1, 2.0)
    with pytest.raises(ValueError, match="weight_gain_sq"):
        ini.relu_second_moment_ratio(2, 0.0)
    with pytest.raises(ValueError, match="init"):
        ini.relu_mlp_second_moments(x, 2, 4, "xavier", gen())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="x must be 2-dimensional"):
        ini.relu_mlp_second_moments(torch.ones(4), 2, 4, "he", gen())
    with pytest.raises(ValueError, match="width"):
        ini.relu_mlp_second_moments(x, 2, 0, "he", gen())
    with pytest.raises(TypeError, match="generator"):
        ini.relu_mlp_second_moments(x, 2, 4, "he", 0)  # type: ignore[arg-type]


# --- attention -----------------------------------------------------------------------------------

def test_attention_stats() -> None:
    r = ini.attention_softmax_stats(32, 64, 512, False, gen(0))
    assert abs(r["logit_second_moment"] / 32 - 1) < 0.1
    s = ini.attention_softmax_stats(32, 64, 512, True, gen(0))
    assert abs(s["logit_second_moment"] - 1) < 0.1
    assert r["max_weight"] > s["max_weight"] and r["entropy"] < s["entropy"] <= math.log(64)
    # the Jacobian norm of a uniform p over n keys is sqrt(1/n - 1/n^2)
    u = ini.attention_softmax_stats(1, 2, 1, True, gen(0))
    assert 0 <= u["jacobian_norm"] <= math.sqrt(0.5) / 1.0


def test_attention_jacobian_norms_match_autograd() -> None:
    # the same draws as the function, then the softmax Jacobian by autograd, query by query
    for d, n, scaled in ((8, 5, False), (64, 40, False), (64, 40, True), (2048, 16, False)):
        r = ini.attention_softmax_stats(d, n, 3, scaled, gen(11))
        g = gen(11)
        q = torch.randn(3, d, generator=g, dtype=F64)
        k = torch.randn(n, d, generator=g, dtype=F64)
        logits = (q @ k.T) / (math.sqrt(d) if scaled else 1.0)
        jacs = [torch.autograd.functional.jacobian(lambda s: torch.softmax(s, -1), row)
                for row in logits]
        fro = sum(float(torch.linalg.matrix_norm(j)) for j in jacs) / 3
        l1 = sum(float(j.abs().sum()) for j in jacs) / 3
        assert math.isfinite(r["jacobian_norm"])
        assert_close(r["jacobian_norm"], fro, rtol=1e-9, atol=1e-12)
        assert_close(r["jacobian_l1"], l1, rtol=1e-9, atol=1e-12)


def test_attention_errors() -> None:
    with pytest.raises(ValueError, match="n_keys"):
        ini.attention_softmax_stats(4, 1, 3, True, gen())
    with pytest.raises(ValueError, match="d"):
        ini.attention_softmax_stats(0, 4, 3, True, gen())
    with pytest.raises(TypeError, match="generator"):
        ini.attention_softmax_stats(4, 4, 3, True, None)  # type: ignore[arg-type]


# --- norms and NTK -------------------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 40))
def test_norms_match_torch(seed: int, d: int) -> None:
    x = torch.randn(5, d, generator=gen(seed), dtype=F64) * 2 + 0.7
    w = torch.rand(d, generator=gen(seed + 1), dtype=F64) + 0.5
    b = torch.randn(d, generator=gen(seed + 2), dtype=F64)
    ln = torch.nn.LayerNorm(d, eps=1e-5, dtype=F64)
    rms = torch.nn.RMSNorm(d, eps=1e-6, dtype=F64)
    with torch.no_grad():
        ln.weight.copy_(w)
        ln.bias.copy_(b)
        rms.weight.copy_(w)
        assert_close(ini.layer_norm(x, 1e-5, w, b), ln(x), rtol=1e-12, atol=1e-12)
        assert_close(ini.rms_norm(x, 1e-6, w), rms(x), rtol=1e-12, atol=1e-12)
    # LayerNorm is RMSNorm of the centred vector
    assert_close(ini.layer_norm(x, 0.0), ini.rms_norm(x - x.mean(-1, keepdim=True), 0.0),
                 rtol=1e-12, atol=1e-12)


def test_ntk_linear_equals_lecun_linear() -> None:
    x = torch.randn(7, 12, generator=gen(0), dtype=F64)
    w = torch.randn(12, 5, generator=gen(1), dtype=F64)
    b = torch.randn(5, generator=gen(2), dtype=F64)
    assert_close(ini.ntk_linear(x, w, b), torch.nn.functional.linear(x, w.T / math.sqrt(12), b))


def test_norm_and_ntk_errors() -> None:
    with pytest.raises(ValueError, match="x must have at least one axis"):
        ini.layer_norm(torch.tensor(1.0))
    with pytest.raises(ValueError, match="x must have at least one axis"):
        ini.rms_norm(torch.tensor(1.0))
    with pytest.raises(ValueError, match="eps"):
        ini.rms_norm(torch.ones(3), eps=-1.0)
    with pytest.raises(ValueError, match="weight"):
        ini.layer_norm(torch.ones(2, 3), weight=torch.ones(4))
    with pytest.raises(ValueError, match="bias"):
        ini.layer_norm(torch.ones(2, 3), bias=torch.ones(2))
    with pytest.raises(ValueError, match="x must be finite"):
        ini.rms_norm(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="weight"):
        ini.ntk_linear(torch.ones(2, 3), torch.ones(4, 2))
    with pytest.raises(ValueError, match="bias"):
        ini.ntk_linear(torch.ones(2, 3), torch.ones(3, 2), torch.ones(3))
    with pytest.raises(ValueError, match="x must have at least one axis"):
        ini.ntk_linear(torch.tensor(1.0), torch.ones(1, 2))


# --- residual recursions -------------------------------------------------------------------------

def test_recursion_closed_forms() -> None:
    w = ini.postnorm_branch_weights(4)
    assert np.allclose(w, [0.25, 0.25, 2**-1.5, 0.5, 2**-0.5], rtol=1e-15)
    # the weights square-sum to one: x_L has unit second moment
    assert math.isclose(float((ini.postnorm_branch_weights(30) ** 2).sum()), 1.0, rel_tol=1e-13)
    assert np.allclose(ini.prenorm_stream_rms(3) ** 2, [1, 2, 3, 4])
    assert np.allclose(ini.rezero_stream_rms(3, 1.0) ** 2, [1, 2, 4, 8])
    assert np.all(ini.rezero_stream_rms(5, 0.0) == 1.0)


def test_residual_stack_structure() -> None:
    x0 = torch.randn(4, 64, generator=gen(0), dtype=F64)
    pre = ini.residual_stack(x0, 5, "pre", gen(1))
    assert_close(pre["stream"][-1], x0 + pre["branches"].sum(0))
    post = ini.residual_stack(x0, 5, "post", gen(1))
    parts = torch.cat([x0[None], post["branches"]])
    w = ini.branch_weights_lstsq(post["stream"][-1], parts)
    # exact weights: the product of 1/std of (x_t + F_t) over the blocks after each branch
    sd = (post["stream"][:-1] + post["branches"]).std(-1, unbiased=False)           # (L, n)
    eps_sd = torch.sqrt(sd**2 + 1e-5)
    tail = torch.flip(torch.cumprod(torch.flip(1 / eps_sd, [0]), 0), [0])          # (L, n)
    assert_close(w[:, 1:], tail.T, rtol=1e-8, atol=1e-12)
    rz = ini.residual_stack(x0, 3, "rezero", gen(1), alpha=0.5)
    assert_close(rz["stream"][-1], x0 + 0.5 * rz["branches"].sum(0))


def test_residual_errors() -> None:
    x0 = torch.ones(2, 8)
    with pytest.raises(ValueError, match="scheme"):
        ini.residual_stack(x0, 2, "mid", gen())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="x0 must be 2-dimensional"):
        ini.residual_stack(torch.ones(8), 2, "pre", gen())
    with pytest.raises(ValueError, match="depth"):
        ini.residual_stack(x0, 0, "pre", gen())
    with pytest.raises(TypeError, match="generator"):
        ini.residual_stack(x0, 2, "pre", None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha"):
        ini.rezero_stream_rms(2, float("inf"))
    with pytest.raises(ValueError, match="depth"):
        ini.postnorm_branch_weights(0)
    with pytest.raises(TypeError, match="depth"):
        ini.prenorm_stream_rms(2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="parts must have shape"):
        ini.branch_weights_lstsq(torch.ones(2, 8), torch.ones(3, 2, 7))
    with pytest.raises(ValueError, match="parts"):
        ini.branch_weights_lstsq(torch.ones(2, 4), torch.ones(4, 2, 4))
