"""Tests for kexue_notes.sequences.char_decoder: data, the batched GRU, training, decoding."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from kexue_notes.sequences import char_decoder as cd


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- data ----------------------------------------------------------------------------------------

def test_path_is_gensims_datapath() -> None:
    from gensim.test.utils import datapath

    assert str(cd.lee_background_path()) == datapath("lee_background.cor")


def test_load_lee_words() -> None:
    train, held = cd.load_lee_words(4, 8, 240)
    assert len(train) > 20_000 and len(held) > 5_000
    assert all(4 <= len(w) <= 8 and w.isalpha() and w.islower() for w in train + held)
    train2, held2 = cd.load_lee_words(4, 8, 200)
    assert len(train2) < len(train) and len(held2) > len(held)
    assert train2 == train[:len(train2)]
    with pytest.raises(ValueError, match="n_train_docs must be < 300"):
        cd.load_lee_words(4, 8, 300)
    with pytest.raises(ValueError, match="max_len must be >= 4"):
        cd.load_lee_words(4, 3)
    with pytest.raises(TypeError, match="min_len must be an integer"):
        cd.load_lee_words("4")


def test_encode_completions_by_hand() -> None:
    d = cd.encode_completions(["state", "staff", "than"], 3, 6)
    assert d["inputs"][0].tolist() == [19, 20, 1, 20, 5, 0]
    assert d["targets"][0].tolist() == [-100, -100, 20, 5, 0, -100]
    assert d["replace_mask"][0].tolist() == [False, False, False, True, True, False]
    assert d["prefixes"].tolist() == [[19, 20, 1], [19, 20, 1], [20, 8, 1]]
    assert d["completions"][2].tolist() == [14, 0, 0, 0]
    assert d["completions"][1].tolist() == [6, 6, 0, 0]
    full = cd.encode_completions(["abcdef"], 3, 6)                          # a word of max length
    assert full["targets"][0].tolist() == [-100, -100, 4, 5, 6, 0]
    with pytest.raises(ValueError, match="words must be lower-case letters"):
        cd.encode_completions(["State"], 3, 6)
    with pytest.raises(ValueError, match="words must be lower-case letters"):
        cd.encode_completions(["abc"], 3, 6)
    with pytest.raises(ValueError, match="words must be lower-case letters"):
        cd.encode_completions(["abcdefg"], 3, 6)
    with pytest.raises(TypeError, match="words must be a non-empty sequence"):
        cd.encode_completions("state", 3, 6)
    with pytest.raises(TypeError, match="words must be a non-empty sequence"):
        cd.encode_completions(["state", 3], 3, 6)
    with pytest.raises(ValueError, match="max_len must be >= 4"):
        cd.encode_completions(["state"], 3, 3)


# --- the batched GRU -----------------------------------------------------------------------------

@settings(max_examples=10, deadline=None)
@given(st.integers(0, 1000), st.integers(1, 3), st.integers(1, 7))
def test_gru_matches_torch_nn_gru(seed: int, M: int, T: int) -> None:
    params = cd.init_gru_lm(M, 7, 5, 6, gen(seed))
    x = torch.randint(0, 7, (M, 4, T), generator=gen(seed + 1))
    h0 = torch.randn(M, 4, 6, generator=gen(seed + 2))
    with torch.no_grad():
        ours, h = cd.gru_lm_logits(params, x, h0)
        for m in range(M):
            mods = cd.gru_lm_to_torch(params, m)
            out, hT = mods["gru"](mods["embedding"](x[m]), h0[m][None])
            assert_close(ours[m], mods["out"](out), rtol=1e-5, atol=1e-6)
            assert_close(h[m], hT[0], rtol=1e-5, atol=1e-6)


def test_gru_check_can_fail() -> None:
    """Swapping the r and z gates changes the output: the comparison above has teeth."""
    params = cd.init_gru_lm(1, 7, 5, 6, gen(0))
    x = torch.randint(0, 7, (1, 4, 5), generator=gen(1))
    with torch.no_grad():
        mods = cd.gru_lm_to_torch(params, 0)
        ref = mods["out"](mods["gru"](mods["embedding"](x[0]))[0])
        swapped = {k: v.clone() for k, v in params.items()}
        for key in ("w_ih", "w_hh", "b_ih", "b_hh"):
            r, z, n = swapped[key].chunk(3, -1)
            swapped[key] = torch.cat([z, r, n], -1)
        ours, _ = cd.gru_lm_logits(swapped, x)
    assert float((ours[0] - ref).abs().max()) > 1e-3


def test_gru_errors() -> None:
    params = cd.init_gru_lm(2, 7, 5, 6, gen(0))
    x = torch.zeros(2, 3, 4, dtype=torch.long)
    with pytest.raises(TypeError, match="tokens must be an int64 tensor"):
        cd.gru_lm_logits(params, x.float())
    with pytest.raises(ValueError, match="tokens must have shape"):
        cd.gru_lm_logits(params, x[0])
    with pytest.raises(ValueError, match="tokens must lie in"):
        cd.gru_lm_logits(params, x + 7)
    with pytest.raises(ValueError, match="h0 must have shape"):
        cd.gru_lm_logits(params, x, torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match="params must be a dict"):
        cd.gru_lm_logits({"emb": params["emb"]}, x)
    bad = dict(params, w_out=params["w_out"][:, :, :3])
    with pytest.raises(ValueError, match=r"params\['w_out'\] must have shape"):
        cd.gru_lm_logits(bad, x)
    with pytest.raises(ValueError, match="m must be < 2"):
        cd.gru_lm_to_torch(params, 2)
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator"):
        cd.init_gru_lm(1, 7, 5, 6, 0)
    with pytest.raises(ValueError, match="vocab must be >= 2"):
        cd.init_gru_lm(1, 1, 5, 6, gen())


# --- training, scoring, decoding -----------------------------------------------------------------

WORDS = ["state", "states", "staff", "start", "than", "that", "then", "there", "these", "those",
         "attack", "attacks"] * 5


@pytest.fixture(scope="module")
def trained():
    data = cd.encode_completions(WORDS, 3, 7)
    params, losses = cd.train_gru_lms(data, (0.0, 0.5, 0.0), 2, steps=40, batch_size=16, lr=0.05,
                                      embed=8, hidden=12, seed=3)
    return data, params, losses


def test_training_learns_and_arms_are_paired(trained) -> None:
    data, params, losses = trained
    assert losses.shape == (40, 6)
    assert bool((losses[-5:].mean(0) < losses[:5].mean(0) - 0.3).all())
    # arms 0 and 2 are both teacher forcing with the same seeds: identical models
    for key, val in params.items():
        assert torch.equal(val[0:2], val[4:6]), key
        assert not torch.equal(val[0:2], val[2:4]), key                   # replacement differs
    again = cd.train_gru_lms(data, (0.0, 0.5, 0.0), 2, steps=40, batch_size=16, lr=0.05, embed=8,
                             hidden=12, seed=3)[1]
    assert torch.equal(again, losses)


def test_completion_logprob_against_a_loop(trained) -> None:
    data, params, _ = trained
    lp = cd.completion_logprob(params, data)
    with torch.no_grad():
        logits, _ = cd.gru_lm_logits(params, data["inputs"].expand(6, -1, -1))
        logp = torch.log_softmax(logits, -1)
    for m in (0, 3):
        for i in (0, 7):
            tgt = data["targets"][i]
            want = sum(float(logp[m, i, j, int(tgt[j])]) for j in range(len(tgt)) if tgt[j] >= 0)
            assert abs(float(lp[m, i]) - want) < 1e-5


def test_beam_scores_are_teacher_forced_logprobs(trained) -> None:
    data, params, _ = trained
    prefixes = torch.unique(data["prefixes"], dim=0)
    seqs, scores, done = cd.beam_complete(params, prefixes, 3, 5)
    assert seqs.shape[:3] == (6, len(prefixes), 3)
    assert bool((scores[..., :-1] >= scores[..., 1:]).all())
    for m in (0, 2):
        for i in range(len(prefixes)):
            for k in range(3):
                s = seqs[m, i, k].tolist()
                if not bool(done[m, i, k]) or s[0] == cd.EOS:
                    continue
                word = "".join(chr(96 + c) for c in prefixes[i].tolist() + s if c != cd.EOS)
                d = cd.encode_completions([word], 3, 7)
                lp = cd.completion_logprob({kk: v[m:m + 1] for kk, v in params.items()}, d)
                assert abs(float(lp[0, 0]) - float(scores[m, i, k])) < 1e-4


def test_beam_one_is_a_greedy_loop(trained) -> None:
    data, params, _ = trained
    prefixes = torch.unique(data["prefixes"], dim=0)
    seqs, _, _ = cd.beam_complete(params, prefixes, 1, 5)
    one = {k: v[1:2] for k, v in params.items()}
    for i in range(len(prefixes)):
        toks = prefixes[i].tolist()
        out = []
        for _ in range(5):
            logits, _ = cd.gru_lm_logits(one, torch.tensor([[toks]]))
            nxt = int(logits[0, 0, -1].argmax())
            out.append(nxt)
            if nxt == cd.EOS:
                break
            toks.append(nxt)
        assert seqs[1, i, 0].tolist()[:len(out)] == out


def test_exact_match(trained) -> None:
    data, _, _ = trained
    comp = data["completions"][:3]                          # 'te', 'tes', 'ff' + end tokens
    seqs = comp[None, :, :3].clone()
    done = torch.ones(1, 3, dtype=torch.bool)
    assert cd.exact_match(seqs, done, comp).tolist() == [[True, True, True]]
    done[0, 1] = False
    seqs[0, 2, 0] = 1
    assert cd.exact_match(seqs, done, comp).tolist() == [[True, False, False]]
    with pytest.raises(ValueError, match="do not match"):
        cd.exact_match(seqs[..., :2, :], done, comp)


def test_training_and_decoding_errors() -> None:
    data = cd.encode_completions(WORDS[:4], 3, 7)
    kw = dict(steps=2, batch_size=4, lr=0.05, embed=4, hidden=4)
    with pytest.raises(ValueError, match="data must hold 'replace_mask'"):
        cd.train_gru_lms({k: v for k, v in data.items() if k != "replace_mask"}, (0.0,), 1, **kw)
    with pytest.raises(ValueError, match="p_apply must be a non-empty sequence"):
        cd.train_gru_lms(data, (), 1, **kw)
    with pytest.raises(ValueError, match="p_apply must lie in"):
        cd.train_gru_lms(data, (1.5,), 1, **kw)
    with pytest.raises(ValueError, match="n_seeds must be >= 1"):
        cd.train_gru_lms(data, (0.0,), 0, **kw)
    with pytest.raises(ValueError, match="lr must be finite and > 0"):
        cd.train_gru_lms(data, (0.0,), 1, **{**kw, "lr": 0.0})
    params = cd.init_gru_lm(1, cd.VOCAB, 4, 4, gen())
    with pytest.raises(ValueError, match="prefixes must be an int64 tensor"):
        cd.beam_complete(params, data["prefixes"].float(), 2, 4)
    with pytest.raises(ValueError, match="data must hold 'targets'"):
        cd.completion_logprob(params, {"inputs": data["inputs"]})
