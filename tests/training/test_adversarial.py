"""Tests of kexue_notes.training.adversarial: closed forms, identities, recipes, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from kexue_notes.training import adversarial as adv

torch.set_num_threads(1)
F64 = torch.float64


def random_batch(seed: int, B: int = 5, D: int = 4) -> torch.Tensor:
    return torch.randn(B, D, generator=torch.Generator().manual_seed(seed), dtype=F64)


def small_head(seed: int = 0, D: int = 4) -> torch.nn.Sequential:
    return adv.make_head(D, 6, seed=seed)


# --- the closed forms ----------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.01, 5.0))
def test_fgm_maximises_the_linear_gain_over_the_ball(seed: int, eps: float) -> None:
    g = random_batch(seed)
    r = adv.fgm_perturbation(g, eps)
    assert_close(r.norm(dim=1), torch.full((5,), eps, dtype=F64))
    gain = (g * r).sum(1)
    assert_close(gain, adv.first_order_gain(g, eps, "l2"))
    # no random point of the ball does better (Cauchy-Schwarz, checked by sampling)
    u = torch.randn(200, 4, generator=torch.Generator().manual_seed(seed + 1), dtype=F64)
    u = eps * u / u.norm(dim=1, keepdim=True)
    assert bool(((u @ g.T) <= gain[None] + 1e-12).all())


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.01, 5.0))
def test_fgsm_is_the_best_vertex_of_the_cube(seed: int, eps: float) -> None:
    g = random_batch(seed, B=3, D=5)
    verts = eps * torch.tensor(np.array(np.meshgrid(*[[-1.0, 1.0]] * 5)).reshape(5, -1).T)
    best = (g @ verts.T).max(1).values
    assert_close(best, adv.first_order_gain(g, eps, "linf"))
    assert_close((g * adv.fgsm_perturbation(g, eps)).sum(1), best)


def test_zero_gradient_gives_zero_perturbation() -> None:
    g = torch.zeros(2, 3, dtype=F64)
    assert torch.equal(adv.fgm_perturbation(g, 1.0), g)
    assert torch.equal(adv.fgsm_perturbation(g, 1.0), g)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.05, 3.0))
def test_projection_is_the_nearest_point_of_the_ball(seed: int, eps: float) -> None:
    v = 2 * random_batch(seed)
    p = adv.project_l2(v, eps)
    assert bool((p.norm(dim=1) <= eps * (1 + 1e-12)).all())
    inside = v.norm(dim=1) <= eps
    assert torch.equal(p[inside], v[inside])
    # nearest: no sampled point of the ball is closer to v
    u = torch.randn(300, 4, generator=torch.Generator().manual_seed(seed + 2), dtype=F64)
    u = eps * u / u.norm(dim=1, keepdim=True) * torch.rand(300, 1, generator=torch.Generator()
                                                            .manual_seed(seed + 3), dtype=F64)
    d_best = (p - v).norm(dim=1)
    d_any = (u[None] - v[:, None]).norm(dim=2).min(1).values
    assert bool((d_best <= d_any + 1e-12).all())
    assert_close(adv.project_l2(p, eps), p)                   # idempotent


def test_per_sample_norms_on_three_dimensional_batches() -> None:
    g = torch.randn(3, 2, 5, generator=torch.Generator().manual_seed(0), dtype=F64)
    r = adv.fgm_perturbation(g, 0.7)
    assert_close(r.flatten(1).norm(dim=1), torch.full((3,), 0.7, dtype=F64))
    assert adv.first_order_gain(g, 0.7).shape == (3,)


# --- attacks on a model -----------------------------------------------------------------------

def test_input_gradient_matches_finite_differences() -> None:
    head, x = small_head(), random_batch(0)
    y = torch.tensor([0, 1, 0, 1, 1])
    loss_fn = adv.cross_entropy_loss_fn(head, y)
    losses, g = adv.loss_and_input_grad(loss_fn, x)
    h = 1e-6
    for j in range(4):
        e = torch.zeros_like(x)
        e[:, j] = h
        with torch.no_grad():
            fd = (loss_fn(x + e) - loss_fn(x - e)) / (2 * h)
        assert_close(g[:, j], fd, rtol=1e-6, atol=1e-9)
    assert_close(losses.detach(), loss_fn(x).detach())


def test_fgm_remainder_is_second_order() -> None:
    head, x = small_head(), random_batch(1)
    loss_fn = adv.cross_entropy_loss_fn(head, torch.tensor([1, 0, 1, 0, 0]))
    L0, g = adv.loss_and_input_grad(loss_fn, x)
    rem = []
    for e in (1e-3, 1e-2):
        with torch.no_grad():
            rem.append((loss_fn(x + adv.fgm(loss_fn, x, e)) - L0 - adv.first_order_gain(g, e)).abs()
                       .mean().item())
    assert 80 < rem[1] / rem[0] < 120             # a factor 10 in eps, 100 in the remainder


def test_pgd_stays_in_the_ball_and_one_long_step_is_fgm() -> None:
    head, x = small_head(), random_batch(2)
    loss_fn = adv.cross_entropy_loss_fn(head, torch.tensor([0, 0, 1, 1, 0]))
    r = adv.pgd_l2(loss_fn, x, 0.3, 0.1, 10)
    assert bool((r.norm(dim=1) <= 0.3 * (1 + 1e-12)).all())
    assert_close(adv.pgd_l2(loss_fn, x, 0.3, 0.3, 1), adv.fgm(loss_fn, x, 0.3))
    r_fgm = adv.fgm(loss_fn, x, 0.3)
    assert_close(adv.pgd_l2(loss_fn, x, 0.3, 0.3, 1, r0=torch.zeros_like(x)), r_fgm)
    g = adv.loss_and_input_grad(loss_fn, x)[1]
    assert_close(adv.fgsm(loss_fn, x, 0.2), 0.2 * torch.sign(g))


def test_attacks_work_under_no_grad() -> None:
    head, x = small_head(), random_batch(3)
    loss_fn = adv.cross_entropy_loss_fn(head, torch.tensor([0, 1, 1, 1, 0]))
    with torch.no_grad():
        r = adv.fgm(loss_fn, x, 0.1)
    assert_close(r, adv.fgm(loss_fn, x, 0.1))


def test_penalty_gradient_matches_the_attacked_gradient_to_second_order() -> None:
    head, x = small_head(), random_batch(4)
    loss_fn = adv.cross_entropy_loss_fn(head, torch.tensor([1, 1, 0, 0, 1]))
    params = list(head.parameters())

    def flat(s: torch.Tensor) -> torch.Tensor:
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(s, params)])

    _, g = adv.loss_and_input_grad(loss_fn, x)
    for normalized in (True, False):
        gaps = []
        for e in (1e-3, 1e-2):
            r = adv.fgm_perturbation(g, e) if normalized else e * g
            gaps.append((flat(loss_fn(x + r).mean())
                         - flat(adv.input_gradient_penalty(loss_fn, x, e, normalized=normalized)
                                .mean())).norm().item())
        assert 70 < gaps[1] / gaps[0] < 130


# --- the embedding recipes -----------------------------------------------------------------------

def bow_problem() -> tuple[adv.MeanEmbeddingClassifier, torch.Tensor, torch.Tensor]:
    tokens, vocab = adv.encode_tokens(["a b c", "a a d", "e b", "f"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = adv.MeanEmbeddingClassifier(len(vocab) + 1, 3).to(F64)
    return model, tokens, torch.tensor([0, 1, 1, 0])


def test_encode_tokens_and_padding() -> None:
    tokens, vocab = adv.encode_tokens(["x y", "y"])
    assert vocab == {"x": 1, "y": 2}
    assert tokens.tolist() == [[1, 2], [2, 0]]


def test_mean_embedding_ignores_padding() -> None:
    model, tokens, _ = bow_problem()
    pooled = model.pool(model.emb(tokens), tokens)
    assert_close(pooled[3], model.emb.weight[tokens[3, 0]])
    assert_close(pooled[1], model.emb.weight[[1, 1, 4]].mean(0))


def test_embedding_fgm_moves_batch_rows_by_eps_and_restores_exactly() -> None:
    model, tokens, y = bow_problem()
    torch.nn.functional.cross_entropy(model(tokens[:2]), y[:2]).backward()
    E0 = model.emb.weight.detach().clone()
    fgm = adv.EmbeddingFGM(model, "emb", eps=0.4)
    fgm.attack()
    dE = model.emb.weight.detach() - E0
    assert_close(dE.norm(), torch.tensor(0.4, dtype=F64))
    assert set(torch.nonzero(dE.abs().sum(1)).reshape(-1).tolist()) == {1, 2, 3, 4}
    fgm.restore()
    assert torch.equal(model.emb.weight.detach(), E0)
    with pytest.raises(RuntimeError, match="restore"):
        fgm.restore()


def test_embedding_pgd_bookkeeping() -> None:
    model, tokens, y = bow_problem()
    ce = torch.nn.functional.cross_entropy
    ce(model(tokens), y).backward()
    clean = [p.grad.clone() for p in model.parameters()]
    E0 = model.emb.weight.detach().clone()
    pgd = adv.EmbeddingPGD(model, "emb", eps=0.3, alpha=0.2)
    pgd.backup_grad()
    for t in range(3):
        pgd.attack(first=(t == 0))
        if t < 2:
            model.zero_grad()
        else:
            pgd.restore_grad()
        ce(model(tokens), y).backward()
    EK = model.emb.weight.detach().clone()
    final = [p.grad.clone() for p in model.parameters()]
    pgd.restore()
    assert torch.equal(model.emb.weight.detach(), E0)
    assert (EK - E0).norm().item() <= 0.3 * (1 + 1e-12)
    with torch.no_grad():
        model.emb.weight.copy_(EK)
    model.zero_grad()
    ce(model(tokens), y).backward()
    for f, c, a in zip(final, clean, [p.grad for p in model.parameters()], strict=True):
        assert_close(f, c + a)


# --- training ---------------------------------------------------------------------------------

def test_stacked_training_equals_training_alone() -> None:
    x = torch.randn(2, 12, 4, generator=torch.Generator().manual_seed(5), dtype=F64)
    y = (x[..., 0] > 0).long()
    for method in ("clean", "fgm", "pgd"):
        pair = adv.train_heads(x, y, method, eps=0.2, hidden=5, steps=15, lr=1e-2, seeds=[3, 4])
        alone = adv.train_heads(x[1:], y[1:], method, eps=0.2, hidden=5, steps=15, lr=1e-2,
                                seeds=[4])
        for a, b in zip(pair[1].parameters(), alone[0].parameters(), strict=True):
            assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_training_and_accuracy_on_a_separable_problem() -> None:
    x = torch.randn(1, 40, 3, generator=torch.Generator().manual_seed(6), dtype=F64)
    y = (x[..., 0] > 0).long()
    (head,) = adv.train_heads(x, y, "fgm", eps=0.05, hidden=8, steps=150, lr=5e-2, seeds=[0])
    assert adv.accuracy(head, x[0], y[0]) == 1.0
    assert adv.robust_accuracy(head, x[0], y[0], 1e-6, alpha=1e-6, steps=1) == 1.0
    assert adv.robust_accuracy(head, x[0], y[0], 10.0, alpha=2.0, steps=10) < 1.0


def test_errors() -> None:
    g = torch.ones(2, 3, dtype=F64)
    with pytest.raises(ValueError, match="eps"):
        adv.fgm_perturbation(g, 0.0)
    with pytest.raises(ValueError, match="eps"):
        adv.fgsm_perturbation(g, -1.0)
    with pytest.raises(ValueError, match="grad"):
        adv.fgm_perturbation(torch.tensor(1.0), 1.0)
    with pytest.raises(ValueError, match="grad"):
        adv.first_order_gain(torch.full((2, 2), float("nan")), 1.0)
    with pytest.raises(ValueError, match="norm"):
        adv.first_order_gain(g, 1.0, "l1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="r"):
        adv.project_l2(torch.zeros(0, 3), 1.0)
    with pytest.raises(ValueError, match="eps"):
        adv.project_l2(g, 0.0)
    head = small_head(D=3)
    loss_fn = adv.cross_entropy_loss_fn(head, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="loss_fn"):
        adv.loss_and_input_grad(lambda v: head(v).sum(), g)
    with pytest.raises(ValueError, match="x"):
        adv.fgm(loss_fn, torch.zeros(0, 3), 1.0)
    with pytest.raises(ValueError, match="alpha"):
        adv.pgd_l2(loss_fn, g, 1.0, 0.0, 3)
    with pytest.raises(ValueError, match="steps"):
        adv.pgd_l2(loss_fn, g, 1.0, 0.1, 0)
    with pytest.raises(ValueError, match="r0"):
        adv.pgd_l2(loss_fn, g, 1.0, 0.1, 1, r0=torch.zeros(3, 3))
    with pytest.raises(ValueError, match="eps"):
        adv.input_gradient_penalty(loss_fn, g, 0.0)
    with pytest.raises(ValueError, match="y"):
        adv.cross_entropy_loss_fn(head, torch.tensor([0.0, 1.0]))


def test_embedding_errors() -> None:
    model, tokens, _ = bow_problem()
    with pytest.raises(ValueError, match="emb_name"):
        adv.EmbeddingFGM(model, "nothing")
    with pytest.raises(ValueError, match="emb_name"):
        adv.EmbeddingPGD(model, "")
    with pytest.raises(TypeError, match="model"):
        adv.EmbeddingFGM(object(), "emb")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eps"):
        adv.EmbeddingFGM(model, "emb", eps=0.0)
    with pytest.raises(ValueError, match="alpha"):
        adv.EmbeddingPGD(model, "emb", alpha=-1.0)
    with pytest.raises(RuntimeError, match="backward"):
        adv.EmbeddingFGM(model, "emb").attack()
    pgd = adv.EmbeddingPGD(model, "emb")
    with pytest.raises(RuntimeError, match="first=True"):
        pgd.attack()
    with pytest.raises(RuntimeError, match="restore"):
        pgd.restore()
    with pytest.raises(RuntimeError, match="backup_grad"):
        pgd.restore_grad()
    with pytest.raises(ValueError, match="tokens"):
        model(tokens.double())
    with pytest.raises(ValueError, match="vocab_size"):
        adv.MeanEmbeddingClassifier(1, 3)
    with pytest.raises(ValueError, match="sentences"):
        adv.encode_tokens([])
    with pytest.raises(ValueError, match="sentences"):
        adv.encode_tokens(["a", "   "])


def test_training_errors() -> None:
    x = torch.zeros(1, 4, 3, dtype=F64)
    y = torch.zeros(1, 4, dtype=torch.long)
    kw = dict(eps=0.1, hidden=2, steps=1, lr=1e-2, seeds=[0])
    with pytest.raises(ValueError, match="x"):
        adv.train_heads(torch.zeros(4, 3), y, "clean", **kw)
    with pytest.raises(ValueError, match="y"):
        adv.train_heads(x, y.double(), "clean", **kw)
    with pytest.raises(ValueError, match="method"):
        adv.train_heads(x, y, "free", **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seeds"):
        adv.train_heads(x, y, "clean", **{**kw, "seeds": [0, 1]})
    with pytest.raises(ValueError, match="lr"):
        adv.train_heads(x, y, "clean", **{**kw, "lr": 0.0})
    with pytest.raises(ValueError, match="pgd_steps"):
        adv.train_heads(x, y, "pgd", pgd_steps=0, **kw)
    with pytest.raises(ValueError, match="seeds"):
        adv.StackedHead(3, 2, 2, [])
    with pytest.raises(ValueError, match="hidden"):
        adv.make_head(3, 0, seed=0)

