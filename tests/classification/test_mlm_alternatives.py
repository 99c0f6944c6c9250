"""Tests of kexue_notes.classification.mlm_alternatives: closed forms, cross-checks, errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F  # noqa: N812
from hypothesis import given, settings
from hypothesis import strategies as st

from kexue_notes.classification import mlm_alternatives as ma

torch.set_num_threads(1)


def batch(seed: int, b: int = 6, length: int = 20, vocab: int = 7):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (b, length), generator=g)
    special = torch.zeros(b, length, dtype=torch.bool)
    special[:, 0] = True
    return ids, special, g


# --- derangements ------------------------------------------------------------------------------

@pytest.mark.parametrize("n", range(0, 8))
def test_derangement_matches_brute_force_and_sympy(n: int) -> None:
    count = sum(all(p[i] != i for i in range(n)) for p in itertools.permutations(range(n)))
    assert ma.derangement_probability(n) == count / math.factorial(n)
    assert ma.derangement_probability(n) == float(sp.subfactorial(n) / sp.factorial(n))


def test_derangement_tends_to_inverse_e() -> None:
    assert abs(ma.derangement_probability(30) - math.exp(-1)) < 1e-15


# --- shuffle -----------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_shuffle_keeps_the_multiset_and_specials(seed: int) -> None:
    ids, special, g = batch(seed)
    out, lab = ma.shuffle_corrupt(ids, special, 0.5, g)
    assert torch.equal(out[special], ids[special])
    assert not bool(lab[special].any())
    assert torch.equal(out[~lab], ids[~lab])
    # every token placed at a selected position comes from the same row
    for r in range(ids.shape[0]):
        assert set(out[r].tolist()) <= set(ids[r].tolist())


def test_shuffle_noop_rate_matches_monte_carlo() -> None:
    ids, special, g = batch(0, b=4, length=12, vocab=4)
    theory = ma.shuffle_noop_rate(ids, special)
    same = torch.zeros(4, dtype=torch.float64)
    sel = torch.zeros(4, dtype=torch.float64)
    for _ in range(3000):
        out, lab = ma.shuffle_corrupt(ids, special, 1.0, g)
        same += (lab & (out == ids)).sum(1)
        sel += lab.sum(1)
    mc = same / sel
    se = torch.sqrt(theory * (1 - theory) / sel)
    assert bool(((mc - theory).abs() < 4 * se).all())


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 30))
def test_shuffle_noop_rate_is_one_over_length_for_distinct_tokens(length: int) -> None:
    ids = torch.arange(length).unsqueeze(0)
    special = torch.zeros_like(ids, dtype=torch.bool)
    assert math.isclose(float(ma.shuffle_noop_rate(ids, special)[0]), 1 / length, rel_tol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 6).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 2), min_size=n, max_size=n),
    st.lists(st.booleans(), min_size=n, max_size=n).filter(lambda m: not all(m)))))
def test_shuffle_noop_rate_matches_enumeration(row: tuple[list[int], list[bool]]) -> None:
    # the authors' rule, written out independently: i gets w[pi(i)], or keeps w[i] if pi(i)
    # is special
    w, spec = np.asarray(row[0]), np.asarray(row[1])
    perms = np.array(list(itertools.permutations(range(len(w)))))
    kept = (w[perms] == w) | spec[perms]
    exact = kept[:, ~spec].mean()
    ours = ma.shuffle_noop_rate(torch.as_tensor(w)[None], torch.as_tensor(spec)[None])
    assert math.isclose(float(ours[0]), float(exact), rel_tol=1e-12)


def test_shuffle_noop_rate_by_hand() -> None:
    ids = torch.tensor([[9, 1, 1, 2, 9]])
    special = torch.tensor([[True, False, False, False, True]])
    # counts (2, 1), s = 2, L = 5: (4 + 1 + 2 * 3) / (5 * 3)
    assert math.isclose(float(ma.shuffle_noop_rate(ids, special)[0]), 11 / 15)


# --- random and shuffle+random -----------------------------------------------------------------

def test_random_noop_rate_matches_monte_carlo() -> None:
    g = torch.Generator().manual_seed(3)
    ids = torch.full((200, 500), 5)
    special = torch.zeros_like(ids, dtype=torch.bool)
    out, _ = ma.random_corrupt(ids, special, 1.0, 20, [0, 1, 2], g)
    frac = float((out == ids).double().mean())
    theory = ma.random_noop_rate(20, 3)
    assert abs(frac - theory) < 4 * math.sqrt(theory * (1 - theory) / ids.numel())
    assert not bool(torch.isin(out, torch.tensor([0, 1, 2])).any())


def test_shuffle_random_prior_and_frequencies() -> None:
    g = torch.Generator().manual_seed(4)
    ids = torch.randint(3, 50, (300, 100), generator=g)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = True
    _, lab = ma.shuffle_random_corrupt(ids, special, 0.2, 50, [0, 1, 2], g)
    assert bool((lab[special] == -100).all())
    prior = ma.shuffle_random_prior(0.2)
    assert np.allclose(prior, [0.64, 0.2, 0.16]) and math.isclose(prior.sum(), 1.0)
    freq = ma.class_frequencies(lab, 3)
    n = int((lab != -100).sum())
    assert np.all(np.abs(freq - prior) < 4 * np.sqrt(prior * (1 - prior) / n))


def test_mask_tokens_split() -> None:
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(3, 100, (200, 200), generator=g)
    special = torch.zeros_like(ids, dtype=torch.bool)
    x, sel = ma.mask_tokens(ids, special, 0.5, 1, g, vocab_size=100)
    n = int(sel.sum())
    masked = float((x[sel] == 1).double().mean())
    kept = float((x[sel] == ids[sel]).double().mean())
    # kept: the 10% left alone plus the 10% random draws that hit the same id (1 in 100)
    for got, want in ((masked, 0.8 + 0.1 / 100), (kept, 0.1 + 0.1 / 100)):
        assert abs(got - want) < 4 * math.sqrt(want * (1 - want) / n)
    assert torch.equal(x[~sel], ids[~sel])
    x2, sel2 = ma.mask_tokens(ids, special, 0.5, 1, g)
    assert bool((x2[sel2] == 1).all())


# --- token classes and floors ------------------------------------------------------------------

def test_token_classes() -> None:
    toks = ["the", "##the", "cat", "42", "##7", ",", "...", "$", "ébène", "3rd", "[UNK]", "Zoo"]
    tt = ma.token_type_classes(toks, {"the", "a"})
    assert tt.tolist() == [1, 0, 0, 2, 2, 3, 3, 3, 0, 0, 0, 0]
    fc = ma.first_char_classes(toks)
    assert fc.tolist() == [19, 19, 2, 27, 27, 26, 26, 26, 28, 28, 28, 25]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.01, 10.0), min_size=2, max_size=8))
def test_label_entropy_is_constant_predictor_cross_entropy(weights: list[float]) -> None:
    q = np.asarray(weights) / np.sum(weights)
    g = torch.Generator().manual_seed(0)
    y = torch.multinomial(torch.as_tensor(q), 4000, replacement=True, generator=g)
    emp = ma.class_frequencies(y, len(q))
    logits = torch.log(torch.as_tensor(emp, dtype=torch.float64).clamp_min(1e-300))
    ce = F.cross_entropy(logits.expand(len(y), len(q)), y).item()
    assert math.isclose(ce, ma.label_entropy(emp), rel_tol=1e-12, abs_tol=1e-12)
    assert ma.label_entropy(q) <= math.log(len(q)) + 1e-12


# --- cost --------------------------------------------------------------------------------------

@pytest.mark.parametrize("d,k", [(768, 3), (32, 29), (5, 30522)])
def test_head_cost_is_torch_linear(d: int, k: int) -> None:
    with torch.device("meta"):
        lin = torch.nn.Linear(d, k)
    assert ma.output_head_cost(d, k) == (sum(t.numel() for t in lin.parameters()), d * k)


@pytest.mark.parametrize("d,n,ff", [(768, 12, 3072), (512, 8, 2048), (64, 2, 96)])
def test_encoder_count_is_transformers(d: int, n: int, ff: int) -> None:
    from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

    for cls, cfg_cls, v, p, t in ((RobertaModel, RobertaConfig, 50265, 514, 1),
                                  (BertModel, BertConfig, 30522, 512, 2)):
        cfg = cfg_cls(hidden_size=d, num_hidden_layers=n, num_attention_heads=max(1, d // 64),
                      intermediate_size=ff, vocab_size=v, max_position_embeddings=p,
                      type_vocab_size=t)
        with torch.device("meta"):
            model = cls(cfg)
        assert sum(x.numel() for x in model.parameters()) == ma.encoder_parameter_count(
            v, d, n, ff, p, t)


# --- encoder and training ----------------------------------------------------------------------

def test_pretrain_runs_on_every_objective() -> None:
    g = torch.Generator().manual_seed(0)
    chunks = torch.randint(0, 40, (64, 16), generator=g)
    classes = torch.arange(43) % 4
    for obj, k in (("mlm", 43), ("shuffle", 2), ("random", 2), ("shuffle_random", 3),
                   ("token_type", 4), ("first_char", 4)):
        model = ma.TinyEncoder(43, k, max_len=16, seed=1)
        losses = ma.pretrain(model, chunks, obj, steps=5, batch_size=8, lr=1e-2, rate=0.3,
                             vocab_size=43, mask_id=41, special_ids=[40, 41, 42],
                             token_classes=classes, seed=2)
        assert losses.shape == (5,) and np.isfinite(losses).all()
    pad = torch.zeros(3, 16, dtype=torch.bool)
    pad[:, 10:] = True
    feats = model.features(chunks[:3], pad)
    assert feats.shape == (3, 32)


# --- error paths -------------------------------------------------------------------------------

def test_errors() -> None:
    ids, special, g = batch(0)
    with pytest.raises(ValueError, match="k"):
        ma.derangement_probability(-1)
    with pytest.raises(TypeError, match="ids"):
        ma.shuffle_corrupt(ids.float(), special, 0.1, g)
    with pytest.raises(ValueError, match="ids"):
        ma.shuffle_corrupt(ids[0], special[0], 0.1, g)
    with pytest.raises(ValueError, match="ids"):
        ma.shuffle_corrupt(ids - 10, special, 0.1, g)
    with pytest.raises(TypeError, match="ids"):
        ma.shuffle_corrupt([[1]], special, 0.1, g)
    with pytest.raises(TypeError, match="special"):
        ma.shuffle_corrupt(ids, special.long(), 0.1, g)
    with pytest.raises(ValueError, match="special"):
        ma.shuffle_corrupt(ids, special[:, :3], 0.1, g)
    with pytest.raises(ValueError, match="rate"):
        ma.shuffle_corrupt(ids, special, 1.5, g)
    with pytest.raises(TypeError, match="generator"):
        ma.shuffle_corrupt(ids, special, 0.1, 0)
    with pytest.raises(ValueError, match="special"):
        ma.shuffle_noop_rate(ids, torch.ones_like(special))
    with pytest.raises(ValueError, match="vocab_size"):
        ma.random_corrupt(ids, special, 0.1, 3, [0], g)
    with pytest.raises(ValueError, match="special_ids"):
        ma.random_corrupt(ids, special, 0.1, 10, [11], g)
    with pytest.raises(ValueError, match="vocab_size"):
        ma.random_noop_rate(1, 0)
    with pytest.raises(ValueError, match="n_special"):
        ma.random_noop_rate(5, 5)
    with pytest.raises(ValueError, match="rate"):
        ma.shuffle_random_prior(-0.1)
    with pytest.raises(ValueError, match="mask_id"):
        ma.mask_tokens(ids, special, 0.1, -1, g)
    with pytest.raises(TypeError, match="tokens"):
        ma.token_type_classes("abc", set())
    with pytest.raises(TypeError, match="tokens"):
        ma.first_char_classes([1, 2])
    with pytest.raises(ValueError, match="num_classes"):
        ma.class_frequencies([0, 1], 1)
    with pytest.raises(ValueError, match="labels"):
        ma.class_frequencies([0, 5], 3)
    with pytest.raises(ValueError, match="labels"):
        ma.class_frequencies([-100], 3)
    with pytest.raises(TypeError, match="labels"):
        ma.class_frequencies([0.5], 3)
    with pytest.raises(ValueError, match="prior"):
        ma.label_entropy([0.5, 0.6])
    with pytest.raises(ValueError, match="prior"):
        ma.label_entropy([[0.5, 0.5]])
    with pytest.raises(ValueError, match="hidden"):
        ma.output_head_cost(0, 3)
    with pytest.raises(ValueError, match="layers"):
        ma.encoder_parameter_count(10, 8, -1, 16, 4)
    with pytest.raises(TypeError, match="pooler"):
        ma.encoder_parameter_count(10, 8, 1, 16, 4, pooler=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="heads"):
        ma.TinyEncoder(10, 3, hidden=30, heads=4)
    with pytest.raises(ValueError, match="num_classes"):
        ma.TinyEncoder(10, 1)
    with pytest.raises(ValueError, match="objective"):
        ma.corrupt("bogus", ids, rate=0.1, vocab_size=10, mask_id=1, special_ids=[],
                   token_classes=None, generator=g)
    with pytest.raises(ValueError, match="token_classes"):
        ma.corrupt("first_char", ids, rate=0.1, vocab_size=10, mask_id=1, special_ids=[],
                   token_classes=None, generator=g)
    model = ma.TinyEncoder(10, 3)
    with pytest.raises(ValueError, match="lr"):
        ma.pretrain(model, ids, "shuffle_random", steps=1, batch_size=2, lr=-1.0, rate=0.1,
                    vocab_size=10, mask_id=1, special_ids=[])
    with pytest.raises(ValueError, match="objective"):
        ma.pretrain(model, ids, "bogus", steps=1, batch_size=2, lr=1e-3, rate=0.1,
                    vocab_size=10, mask_id=1, special_ids=[])
    with pytest.raises(ValueError, match="steps"):
        ma.pretrain(model, ids, "mlm", steps=0, batch_size=2, lr=1e-3, rate=0.1,
                    vocab_size=10, mask_id=1, special_ids=[])
