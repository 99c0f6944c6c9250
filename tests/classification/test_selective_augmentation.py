"""Tests of kexue_notes.classification.selective_augmentation: identities, sklearn/scipy
cross-checks, Monte Carlo of the edit operations, and every error path."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.stats import entropy
from sklearn.feature_selection import mutual_info_classif

from kexue_notes.classification import selective_augmentation as sa

seeds = st.integers(0, 10_000)


def random_counts(seed: int, n: int = 30, v: int = 12):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.poisson(rng.uniform(0.2, 2.0, size=(2, v))[y])
    return x.astype(float), y


# --- scores ---------------------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(seeds, st.floats(0.1, 3.0))
def test_token_wllr_sums_to_kl(seed: int, alpha: float) -> None:
    x, y = random_counts(seed)
    p_in, p_out = sa.class_word_rates(x, y, presence=False, alpha=alpha)
    assert_allclose(p_in.sum(1), 1.0, rtol=1e-12)
    kl = sa.wllr(p_in, p_out).sum(1)
    assert_allclose(kl, entropy(p_in, p_out, axis=1), rtol=1e-12, atol=1e-15)   # scipy's KL
    assert (kl >= -1e-15).all()


@settings(max_examples=30, deadline=None)
@given(seeds)
def test_presence_rates_by_hand_and_bound(seed: int) -> None:
    x, y = random_counts(seed)
    p_in, p_out = sa.class_word_rates(x, y, presence=True, alpha=1.0)
    df1 = (x[y == 1] > 0).sum(0)
    df0 = (x[y == 0] > 0).sum(0)
    assert_allclose(p_in[1], (df1 + 1) / ((y == 1).sum() + 2), rtol=1e-14)
    assert_allclose(p_out[1], (df0 + 1) / ((y == 0).sum() + 2), rtol=1e-14)
    r = sa.wllr(p_in, p_out)
    assert (r - (p_in - p_out) >= -1e-15).all()          # p log(p/q) >= p - q


@settings(max_examples=30, deadline=None)
@given(st.floats(0.01, 0.99), st.floats(0.01, 0.99))
def test_bernoulli_kl_is_wllr_plus_absence_term(p: float, q: float) -> None:
    kl = sa.bernoulli_kl(np.array([p]), np.array([q]))
    assert_allclose(kl, [entropy([p, 1 - p], [q, 1 - q])], rtol=1e-12, atol=1e-15)
    assert_allclose(kl - sa.wllr(np.array([p]), np.array([q])),
                    (1 - p) * math.log((1 - p) / (1 - q)), rtol=1e-10, atol=1e-15)


def test_bernoulli_kl_edges() -> None:
    assert_allclose(sa.bernoulli_kl(np.array([0.0, 1.0]), np.array([0.5, 0.5])),
                    [math.log(2), math.log(2)], rtol=1e-14)


@settings(max_examples=20, deadline=None)
@given(seeds)
def test_presence_mi_matches_sklearn(seed: int) -> None:
    x, y = random_counts(seed, n=40, v=8)
    x[:, 0] = 0                                           # a word in no text
    x[:, 1] = 1                                           # a word in every text
    ours = sa.presence_mutual_information(x, y)
    sk = mutual_info_classif((x > 0).astype(float), y, discrete_features=True)
    assert_allclose(ours, sk, rtol=0, atol=1e-12)
    assert ours[0] == 0 and ours[1] == 0


@settings(max_examples=30, deadline=None)
@given(st.floats(0.01, 0.99), st.floats(0.01, 0.99), st.floats(0.05, 0.95))
def test_llr_from_pmi(p: float, q: float, prior: float) -> None:
    pmi = math.log(p / (prior * p + (1 - prior) * q))
    assert_allclose(sa.llr_from_pmi(np.array([pmi]), prior), [math.log(p / q)],
                    rtol=1e-10, atol=1e-12)


# --- vectors and roles ----------------------------------------------------------------------------

def test_nearest_neighbours_by_brute_force() -> None:
    rng = np.random.default_rng(0)
    v = rng.standard_normal((20, 5))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    words = [f"w{i}" for i in range(20)]
    nb = sa.nearest_neighbours(words, v, 3)
    for i, w in enumerate(words):
        sims = sorted(((float(v[i] @ v[j]), words[j]) for j in range(20) if j != i), reverse=True)
        assert nb[w] == [u for _, u in sims[:3]]


@settings(max_examples=40, deadline=None)
@given(seeds, st.integers(2, 30))
def test_roles_are_quadrants_of_the_median(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    r, s = rng.standard_normal(n), rng.standard_normal(n)
    roles = sa.assign_roles(r, s)
    hr, hs = r >= np.median(r), s >= np.median(s)
    expect = np.select([hr & hs, hr & ~hs, ~hr & hs], [sa.GOLD, sa.VENTURE, sa.BONUS], sa.TRIVIAL)
    assert (roles == expect).all()
    assert (roles == sa.GOLD).sum() + (roles == sa.VENTURE).sum() == hr.sum()


# --- closed forms ---------------------------------------------------------------------------------

def test_expected_edits_and_untouched() -> None:
    assert sa.expected_edits([2, 3, 5], [0.0, 0.5, 0.2]) == pytest.approx(2.5)
    assert sa.p_untouched(3, 0.1) == pytest.approx(0.9 ** 3)
    assert sa.p_untouched(0, 0.7) == 1.0


@pytest.mark.parametrize(("L", "g", "k"), [(10, 2, 3), (7, 7, 1), (12, 0, 5), (9, 4, 6)])
def test_fixed_count_by_enumeration(L: int, g: int, k: int) -> None:
    draws = list(itertools.combinations(range(L), k))
    avoid = sum(all(i >= g for i in d) for d in draws)
    assert sa.p_untouched_fixed(L, g, k) == pytest.approx(avoid / len(draws), abs=1e-15)


def test_matched_rate_gives_same_expected_edits() -> None:
    rho2 = sa.matched_selective_rate(0.1, 20, 5)
    assert sa.expected_edits([5, 15], [0.0, rho2]) == pytest.approx(0.1 * 20)


@settings(max_examples=30, deadline=None)
@given(seeds)
def test_retained_evidence_by_enumeration(seed: int) -> None:
    rng = np.random.default_rng(seed)
    s, rho = rng.standard_normal(4), rng.uniform(0, 1, 4)
    vals, probs = [], []
    for keep in itertools.product((0, 1), repeat=4):
        k = np.array(keep)
        probs.append(np.prod(np.where(k == 1, 1 - rho, rho)))
        vals.append(float(s @ k))
    vals_a, probs_a = np.array(vals), np.array(probs)
    mean = float(probs_a @ vals_a)
    mu, var = sa.retained_evidence(s, rho)
    assert mu == pytest.approx(mean, abs=1e-12)
    assert var == pytest.approx(float(probs_a @ vals_a ** 2) - mean ** 2, abs=1e-12)


# --- augment --------------------------------------------------------------------------------------

TOKENS = ["g1", "v1", "b1", "t1", "g2", "t2", "b2", "v2", "t3", "t4"]
ROLES = [sa.GOLD, sa.VENTURE, sa.BONUS, sa.TRIVIAL, sa.GOLD, sa.TRIVIAL, sa.BONUS, sa.VENTURE,
         sa.TRIVIAL, sa.TRIVIAL]
NB = {t: [t + "'"] for t in TOKENS}


def test_selective_ops_spare_gold_and_match_counts() -> None:
    rng = np.random.default_rng(0)
    n_del, n_mc = 0, 4000
    for _ in range(n_mc):
        out = sa.augment(TOKENS, rng, op="delete", rate=0.2, roles=ROLES)
        assert "g1" in out and "g2" in out
        n_del += len(TOKENS) - len(out)
        rep = sa.augment(TOKENS, rng, op="replace", rate=0.2, roles=ROLES, neighbours=NB)
        assert rep[0] == "g1" and rep[4] == "g2"
        assert sum(a != b for a, b in zip(rep, TOKENS, strict=True)) == 2
    # deletion rate 0.2 * 10 / 8 on the 8 non-Gold words: 2 expected deletions
    assert abs(n_del / n_mc - 2.0) < 4 * math.sqrt(8 * 0.25 * 0.75 / n_mc)


def test_uniform_delete_rate_and_insert_and_select() -> None:
    rng = np.random.default_rng(1)
    n_mc, kept_g1 = 4000, 0
    for _ in range(n_mc):
        kept_g1 += "g1" in sa.augment(TOKENS, rng, op="delete", rate=0.3)
    assert abs(kept_g1 / n_mc - 0.7) < 4 * math.sqrt(0.21 / n_mc)
    ins = sa.augment(TOKENS, rng, op="insert", rate=0.2, roles=ROLES, neighbours=NB)
    added = [w for w in ins if w.endswith("'")]
    assert len(ins) == 12 and len(added) == 2 and not any(w.startswith("v") for w in added)
    assert sa.augment(TOKENS, rng, op="select", rate=0.0, roles=ROLES) == ["g1", "g2"]
    no_gold = [sa.TRIVIAL] * len(TOKENS)
    assert sa.augment(TOKENS, rng, op="select", rate=0.0, roles=no_gold) == TOKENS
    assert sa.augment(["a"], rng, op="delete", rate=1.0) == ["a"]          # never empty


# --- error paths ----------------------------------------------------------------------------------

def test_errors() -> None:
    x, y = random_counts(0)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="counts"):
        sa.class_word_rates(-x, y)
    with pytest.raises(ValueError, match="counts"):
        sa.class_word_rates(x[0], y)
    with pytest.raises(ValueError, match="labels"):
        sa.class_word_rates(x, y[:-1])
    with pytest.raises(TypeError, match="labels"):
        sa.class_word_rates(x, y.astype(float))
    with pytest.raises(ValueError, match="labels"):
        sa.class_word_rates(x, y - 1)
    with pytest.raises(ValueError, match="labels"):
        sa.class_word_rates(x, np.zeros_like(y))
    with pytest.raises(TypeError, match="presence"):
        sa.class_word_rates(x, y, presence=1)
    with pytest.raises(ValueError, match="alpha"):
        sa.class_word_rates(x, y, alpha=-1.0)
    x0 = x.copy()
    x0[:, 0] = 0
    with pytest.raises(ValueError, match="alpha"):
        sa.class_word_rates(x0, y, alpha=0.0)
    with pytest.raises(ValueError, match="p_out"):
        sa.wllr(np.ones(2) / 2, np.ones(3) / 3)
    with pytest.raises(ValueError, match="p_in"):
        sa.wllr(np.array([0.0]), np.array([0.5]))
    with pytest.raises(ValueError, match="p_out"):
        sa.wllr(np.array([0.5]), np.array([1.5]))
    with pytest.raises(ValueError, match="q"):
        sa.bernoulli_kl(np.array([0.5]), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="p"):
        sa.bernoulli_kl(np.array([1.5]), np.array([0.5]))
    with pytest.raises(ValueError, match="q"):
        sa.bernoulli_kl(np.array([0.5]), np.array([1.0]))
    with pytest.raises(ValueError, match="pmi"):
        sa.llr_from_pmi(np.array([5.0]), 0.5)
    with pytest.raises(ValueError, match="prior"):
        sa.llr_from_pmi(np.array([0.0]), 1.0)
    v = np.eye(3)
    with pytest.raises(ValueError, match="words"):
        sa.nearest_neighbours(["a", "b"], v, 1)
    with pytest.raises(ValueError, match="words"):
        sa.nearest_neighbours(["a", "a", "b"], v, 1)
    with pytest.raises(ValueError, match="k"):
        sa.nearest_neighbours(["a", "b", "c"], v, 3)
    with pytest.raises(ValueError, match="k"):
        sa.nearest_neighbours(["a", "b", "c"], v, 0)
    with pytest.raises(ValueError, match="similarity"):
        sa.assign_roles(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="correlation"):
        sa.assign_roles(np.ones(0), np.ones(0))
    with pytest.raises(ValueError, match="q"):
        sa.assign_roles(np.ones(2), np.ones(2), q=1.5)
    with pytest.raises(ValueError, match="role_counts"):
        sa.expected_edits([-1, 2], [0.1, 0.1])
    with pytest.raises(ValueError, match="rates"):
        sa.expected_edits([1, 2], [0.1, 1.1])
    with pytest.raises(ValueError, match="rates"):
        sa.expected_edits([1, 2], [0.1])
    with pytest.raises(ValueError, match="rate"):
        sa.p_untouched(2, 1.2)
    with pytest.raises(ValueError, match="n_protected"):
        sa.p_untouched(-1, 0.1)
    with pytest.raises(ValueError, match="n_protected"):
        sa.p_untouched_fixed(5, 6, 1)
    with pytest.raises(ValueError, match="n_edits"):
        sa.p_untouched_fixed(5, 1, 6)
    with pytest.raises(ValueError, match="length"):
        sa.p_untouched_fixed(0, 0, 0)
    with pytest.raises(ValueError, match="n_protected"):
        sa.matched_selective_rate(0.1, 5, 5)
    with pytest.raises(ValueError, match="rate"):
        sa.matched_selective_rate(0.9, 10, 5)
    with pytest.raises(ValueError, match="edit_prob"):
        sa.retained_evidence(np.ones(3), np.ones(2) / 2)
    with pytest.raises(ValueError, match="edit_prob"):
        sa.retained_evidence(np.ones(2), np.array([0.5, 2.0]))
    with pytest.raises(ValueError, match="tokens"):
        sa.augment([], rng, op="delete", rate=0.1)
    with pytest.raises(TypeError, match="rng"):
        sa.augment(TOKENS, 0, op="delete", rate=0.1)              # type: ignore[arg-type]
    with pytest.raises(ValueError, match="op"):
        sa.augment(TOKENS, rng, op="swap", rate=0.1)
    with pytest.raises(ValueError, match="rate"):
        sa.augment(TOKENS, rng, op="delete", rate=1.5)
    with pytest.raises(ValueError, match="roles"):
        sa.augment(TOKENS, rng, op="select", rate=0.1)
    with pytest.raises(ValueError, match="roles"):
        sa.augment(TOKENS, rng, op="delete", rate=0.1, roles=[0, 1])
    with pytest.raises(ValueError, match="neighbours"):
        sa.augment(TOKENS, rng, op="replace", rate=0.1)
