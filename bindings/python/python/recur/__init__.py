"""recur: PyTorch-exact recurrent seq2seq models from Rust.

Load a shipped or trained model and decode with it, convert text to phonemes as g2p_en does,
train a model, or use PyTorch-exact recurrent layers on numpy arrays (``recur.nn``)::

    import recur
    m = recur.load("hi-translit")
    m.translate(["ghar", "kitaab"])          # ['घर', 'किताब']
    recur.G2p()("Hello, world!")             # ['HH', 'AH', 'L', 'OW', ' ', ',', ...]

``import recur`` stays fast (tens of milliseconds): numpy is imported only where arrays are
made (attention weights, ``recur.nn``), and json, re and unicodedata where they are used.
"""

from __future__ import annotations

import os

# typing (with the re it imports) would cost more than the rest of `import recur` together:
# its names are for type checkers only, which treat a module-level TYPE_CHECKING as theirs.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

    import numpy as np  # imported lazily at run time (see the module docstring)

    PathLike = Union[str, "os.PathLike[str]"]

from . import _recur

__version__: str = _recur.__version__

__all__ = [
    "G2p",
    "Hypothesis",
    "Model",
    "Sentence",
    "TrainSummary",
    "Word",
    "bundled_models",
    "import_g2p_en",
    "load",
    "nn",
    "set_num_threads",
    "train",
]

class _Record:
    """A small immutable record shown and compared by value (a plain class: dataclasses and
    typing.NamedTuple are slow to import). Subclasses list their fields in ``__slots__``."""

    __slots__: "Tuple[str, ...]" = ()
    _not_compared: "Tuple[str, ...]" = ()

    def __init__(self, *values: "Any") -> None:
        if len(values) != len(self.__slots__):
            raise TypeError(f"{type(self).__name__}: expected {len(self.__slots__)} values, got {len(values)}")
        for name, value in zip(self.__slots__, values):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: "Any") -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def _compared(self) -> "Tuple[Any, ...]":
        return tuple(getattr(self, k) for k in self.__slots__ if k not in self._not_compared)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._compared() == other._compared()

    def __hash__(self) -> int:
        return hash(self._compared())

    def __repr__(self) -> str:
        shown = (f"{k}={getattr(self, k)!r}" for k in self.__slots__ if k not in self._not_compared)
        return f"{type(self).__name__}({', '.join(shown)})"

    def _asdict(self) -> "Dict[str, Any]":
        return {k: getattr(self, k) for k in self.__slots__}


class Hypothesis(_Record):
    """One decoded output: its text, target tokens and scores.

    ``score`` is the length-normalised log-probability the beam ranks by (equal to
    ``log_prob`` when ``alpha`` is 0); ``truncated`` is True when the maximum length was
    reached without end of sequence; ``attention`` is a float32 array
    ``(output tokens, source tokens)`` when asked for with ``attention=True``, else None
    (left out of comparisons and repr).
    """

    __slots__ = ("text", "tokens", "score", "log_prob", "truncated", "attention")
    _not_compared = ("attention",)
    text: str
    tokens: List[str]
    score: float
    log_prob: float
    truncated: bool
    attention: "Optional[np.ndarray]"


class Word(_Record):
    """A word of a line in sentence mode, with its hypotheses (best first)."""

    __slots__ = ("word", "hypotheses")
    word: str
    hypotheses: "List[Hypothesis]"


class Sentence(_Record):
    """A line in sentence mode: its output (best hypotheses, the rest passed through) and
    each of its words."""

    __slots__ = ("text", "words")
    text: str
    words: "List[Word]"


def _hypothesis(raw: "_recur._Hypothesis") -> Hypothesis:
    text, tokens, score, log_prob, truncated, rows = raw
    attention = None
    if rows is not None:
        import numpy as np

        attention = np.array(rows, dtype=np.float32).reshape(len(rows), -1)
    return Hypothesis(text, tokens, score, log_prob, truncated, attention)


def _check_counts(**counts: "Optional[int]") -> None:
    """Counts must be non-negative integers (None = default): a ValueError naming the option,
    rather than the extension's OverflowError for a negative number."""
    for name, value in counts.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
        if value < 0:
            raise ValueError(f"{name}: expected a number >= 0, got {value}")


def _strings(inputs: Iterable[str], what: str) -> List[str]:
    items = list(inputs)
    for i, s in enumerate(items):
        if not isinstance(s, str):
            raise TypeError(f"{what}: item {i} is {type(s).__name__}, expected str")
    return items


class Model:
    """A trained model (load one with :func:`recur.load`).

    Decoding releases the GIL, and the model is only read while decoding, so one ``Model``
    can serve many threads at once.
    """

    def __init__(self, inner: "_recur.Model") -> None:
        self._inner = inner

    @property
    def location(self) -> str:
        """Where the model was loaded from: a directory, or ``bundled:NAME``."""
        return self._inner.location

    @property
    def ensemble_size(self) -> int:
        """How many models decode together: 1, or 1 + the members of an ensemble."""
        return self._inner.ensemble_size

    @property
    def config(self) -> Dict[str, Any]:
        """The run configuration the model was trained with (``data``, ``model``,
        ``train``, ``decode``, ``text`` sections)."""
        import json

        config: Dict[str, Any] = json.loads(self._inner.config_json)
        return config

    def __repr__(self) -> str:
        return f"recur.Model({self.location!r})"

    def translate(
        self,
        inputs: Union[str, Iterable[str]],
        *,
        beam: Optional[int] = None,
        nbest: Optional[int] = None,
        alpha: float = 0.0,
        max_len: Optional[int] = None,
        min_len: int = 0,
        attention: bool = False,
        sentences: bool = False,
        word_freq_weight: Optional[float] = None,
    ) -> Any:
        """Decodes a string or a list of strings (same options as ``recur translate``).

        - ``beam``: beam size, 1 = greedy (default: the model's stored ``[decode] beam``, else 5).
        - ``nbest``: hypotheses per input, at most ``beam``. Given (or with ``attention``), each
          result is a list of :class:`Hypothesis`; not given, each result is the best text.
        - ``alpha``: GNMT length-penalty exponent (0 = raw log-probability).
        - ``max_len``: maximum output tokens (default: the model's ``[decode] max_len``, else
          3 × source tokens + 5); ``min_len``: minimum output tokens.
        - ``attention``: also return each hypothesis's attention weights as a numpy array.
        - ``sentences``: sentence mode: decode every word of each line, keep spacing,
          punctuation and digits; the result per line is a string, or a :class:`Sentence`
          when ``nbest`` or ``attention`` is given.
        - ``word_freq_weight``: λ of the model's word-frequency list (0 = the model alone;
          default: the model's ``[decode]`` weights, in sentence mode its sentence weight).

        A single string in gives a single result out. Errors (an option out of range, an
        input longer than the library's limit) raise ``ValueError`` with recur's message.
        """
        _check_counts(beam=beam, nbest=nbest, max_len=max_len, min_len=min_len)
        items = [inputs] if isinstance(inputs, str) else _strings(inputs, "translate")
        detailed = nbest is not None or attention
        n = 1 if nbest is None else nbest
        results: List[Any]
        if sentences:
            lines = self._inner.translate_sentences(
                items, beam, n, alpha, max_len, min_len, attention, word_freq_weight
            )
            results = [_sentence(s) if detailed else s[0] for s in lines]
        else:
            outs = self._inner.translate(
                items, beam, n, alpha, max_len, min_len, attention, word_freq_weight
            )
            results = [_hypotheses(h) if detailed else _best_text(h) for h in outs]
        return results[0] if isinstance(inputs, str) else results


def _hypotheses(raw: Sequence["_recur._Hypothesis"]) -> List[Hypothesis]:
    return [_hypothesis(h) for h in raw]


def _best_text(raw: Sequence["_recur._Hypothesis"]) -> str:
    return raw[0][0] if raw else ""


def _sentence(raw: "_recur._Sentence") -> Sentence:
    text, words = raw
    return Sentence(text, [Word(w, _hypotheses(hs)) for w, hs in words])


def load(model: PathLike, *, ensemble: bool = True) -> Model:
    """Loads a model: a model directory, a training run (its ``best/``), a model in
    ``$RECUR_MODELS``, or a model shipped inside this package (``"hi-translit"``,
    ``"en-g2p"``; see :func:`bundled_models`).

    A model whose directory lists ensemble members (both shipped models do) decodes with all
    of them, as ``recur translate`` does; ``ensemble=False`` loads its first model alone,
    which decodes several times faster and is less accurate."""
    return Model(_recur.Model.load(os.fspath(model), ensemble))


def bundled_models() -> List[str]:
    """The names of the models shipped inside this package."""
    return list(_recur.bundled_models())


def set_num_threads(n: int) -> bool:
    """Sets the number of threads recur uses (0 = one per core, the default), as the CLI's
    ``--threads``. Call it before the first decode or training step: the worker pool is fixed
    once started. Returns whether the pool took the setting."""
    if n < 0:
        raise ValueError(f"set_num_threads: expected n >= 0, got {n}")
    return _recur.set_num_threads(n)


def import_g2p_en(npz: PathLike, out_dir: PathLike, *, force: bool = False) -> str:
    """Converts g2p_en 2.1.0's checkpoint (``g2p_en/checkpoint20.npz``) into the recur model
    directory ``out_dir``, whose greedy predictions are identical to g2p_en's
    ``G2p.predict``; returns a one-line summary. ``force`` replaces an existing model
    directory (never anything else)."""
    return _recur.import_g2p_en(os.fspath(npz), os.fspath(out_dir), force)


class _G2pText:
    """g2p_en's preprocessing and tokenization, compiled once on first use; numbers are
    spelled out first by recur's English number reader (g2p_en uses inflect for that)."""

    def __init__(self) -> None:
        import re

        # What survives g2p_en's character filter (digits kept: a number too long to spell
        # stays as written).
        self.drop = re.compile(r"[^ a-z0-9'.,?!\-]")
        # Words (letters/digits joined by apostrophes or hyphens) and runs of other
        # characters, as g2p_en's TweetTokenizer splits its filtered text.
        self.token = re.compile(r"[a-z0-9']+(?:-[a-z0-9']+)*|[^\sa-z0-9']+|'")
        self.word_char = re.compile(r"[a-z0-9]")

    def tokens(self, text: str) -> List[str]:
        """Numbers spelled, accents stripped, lowercased, filtered, i.e./e.g. expanded,
        tokenized."""
        import unicodedata

        text = unicodedata.normalize("NFD", _recur.spell_numbers(text))
        text = "".join(c for c in text if unicodedata.category(c) != "Mn").lower()
        text = self.drop.sub("", text)
        text = text.replace("i.e.", "that is").replace("e.g.", "for example")
        return self.token.findall(text)

    def is_word(self, token: str) -> bool:
        return self.word_char.search(token) is not None


class G2p:
    """English grapheme-to-phoneme conversion as g2p_en's ``G2p`` does it: ``G2p()(text)``
    returns the phonemes of each word, with ``" "`` between words and punctuation kept.

    Every word is decoded by ``model`` (default: the shipped ``en-g2p``; a directory made by
    :func:`import_g2p_en` gives g2p_en's own predictions), all words of a call in one batch.
    Whatever the model's library pipeline adds (a pronunciation lexicon, number spelling)
    applies here too. Unlike g2p_en there is no part-of-speech tagging, so homographs get
    one pronunciation.
    """

    def __init__(self, model: Union[PathLike, Model] = "en-g2p", *, beam: Optional[int] = None) -> None:
        self.model = model if isinstance(model, Model) else load(model)
        self.beam = beam
        self._text = _G2pText()

    def __call__(self, text: str) -> List[str]:
        if not isinstance(text, str):
            raise TypeError(f"G2p: expected str, got {type(text).__name__}")
        tokens = self._text.tokens(text)
        prons = self._pronounce({t for t in tokens if self._text.is_word(t)})
        phonemes: List[str] = []
        for token in tokens:
            phonemes.extend(prons.get(token, [token]))
            phonemes.append(" ")
        return phonemes[:-1]

    def _pronounce(self, words: Iterable[str]) -> Dict[str, List[str]]:
        """Each distinct word's phonemes, decoded in one batch; a hyphenated word is
        pronounced part by part (the models have no symbol for "-")."""
        words = sorted(words)
        parts = sorted({p for w in words for p in w.split("-") if p})
        outputs = self.model.translate(parts, beam=self.beam) if parts else []
        part_phonemes = {p: out.split() for p, out in zip(parts, outputs)}
        return {w: [ph for p in w.split("-") if p for ph in part_phonemes[p]] for w in words}


class TrainSummary(_Record):
    """What :func:`train` returns: why it ended (``finished``, ``time_limit``,
    ``already_finished``), the best dev exact match (None without a dev set), the steps
    taken in all, the seconds of this call, and the run's paths."""

    __slots__ = ("end", "best_dev_accuracy", "steps", "seconds", "best_dir", "last_dir", "log")
    end: str
    best_dev_accuracy: "Optional[float]"
    steps: int
    seconds: float
    best_dir: str
    last_dir: str
    log: str


def _override(key: str, value: Any) -> str:
    """A ``section.key=value`` override; Python values are written as TOML values."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, (str, os.PathLike)):
        import json

        text = json.dumps(os.fspath(value))  # a TOML basic string
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(_override("v", v).split("=", 1)[1] for v in value) + "]"
    else:
        raise TypeError(f"overrides[{key!r}]: unsupported type {type(value).__name__}")
    return f"{key}={text}"


def train(
    config: Optional[PathLike],
    out: PathLike,
    overrides: Optional[Mapping[str, Any]] = None,
    *,
    resume: bool = False,
    time_limit: float = 0.0,
    progress: bool = True,
) -> TrainSummary:
    """Trains a model as ``recur train`` does: ``config`` (a TOML run config, or None for the
    defaults) with ``overrides`` (``{"train.lr": 0.001, "data.train": "words.tsv"}``) into the
    run directory ``out`` (``out/best`` is the model; ``resume=True`` continues ``out/last``).

    Progress is printed on stderr. Ctrl-C stops the run after saving a checkpoint of its
    current step (continue it with ``resume=True``) and then raises KeyboardInterrupt.
    ``time_limit`` (seconds, 0 = none) stops it the same way, without the exception.
    """
    sets = [_override(k, v) for k, v in (overrides or {}).items()]
    cfg = None if config is None else os.fspath(config)
    s = _recur.train(cfg, os.fspath(out), sets, resume, float(time_limit), progress)
    return TrainSummary(*(s[k] for k in TrainSummary.__slots__))


def __getattr__(name: str) -> Any:
    # `recur.nn` imports numpy: load it on first use, not with `import recur`.
    if name == "nn":
        from . import nn

        return nn
    raise AttributeError(f"module 'recur' has no attribute {name!r}")
