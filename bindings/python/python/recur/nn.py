"""PyTorch-exact layers on numpy arrays: ``Embedding``, ``Linear``, ``RNN``, ``LSTM``, ``GRU``
and their cells, with PyTorch's constructor arguments, parameter names, shapes and return
conventions. Forward passes are inference (PyTorch's ``eval()`` mode: no dropout); arrays are
float32 (embedding ids: integers). Errors raise ``ValueError`` with recur's message.

    lstm = recur.nn.LSTM(4, 5, num_layers=2, bidirectional=True)
    lstm.load_state_dict(torch_lstm_state_dict_as_numpy)
    output, (h_n, c_n) = lstm(x, lengths=[3, 1])     # x: (T, B, 4)
"""

from __future__ import annotations

import random
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _recur

__all__ = ["Module", "Embedding", "Linear", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]

ArrayLike = Any  # anything np.asarray takes


def _seed(seed: Optional[int]) -> int:
    # Initialisation follows PyTorch's distributions with recur's seeded generator; without a
    # seed every layer draws its own. Any int is a seed (taken modulo 2**64).
    return random.getrandbits(63) if seed is None else int(seed) % (1 << 64)


def _sizes(**sizes: int) -> None:
    """Sizes must be non-negative ints: a ValueError naming the argument (the extension would
    raise OverflowError for a negative one)."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
        if value < 0:
            raise ValueError(f"{name}: expected a number >= 0, got {value}")


def _to_raw(x: ArrayLike, dtype: str, what: str) -> Tuple[List[int], bytes]:
    """An array as the extension takes it: its shape and little-endian bytes."""
    arr = np.asarray(x)
    if dtype == "<f4" and not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{what}: expected a float32 array, got dtype {arr.dtype}")
    if dtype == "<i8" and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what}: expected an integer array of indices, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    return list(arr.shape), arr.tobytes()


def _from_raw(raw: Tuple[Sequence[int], bytearray]) -> np.ndarray:
    """A float32 array over the extension's buffer (writable, no copy)."""
    shape, buf = raw
    arr: np.ndarray = np.frombuffer(buf, dtype="<f4").reshape(tuple(shape))
    return arr


def _cell_state(c: Optional[np.ndarray]) -> np.ndarray:
    # An LSTM always returns its cell state; the extension's signature is shared with GRU/RNN.
    if c is None:
        raise RuntimeError("recur: an LSTM returned no cell state (a bug in recur)")
    return c


def _opt_raw(x: Optional[ArrayLike], what: str) -> Optional[Tuple[List[int], bytes]]:
    return None if x is None else _to_raw(x, "<f4", what)


class Module:
    """What every layer has: ``state_dict``, ``load_state_dict``, ``forward`` / call."""

    _inner: Any

    def state_dict(self) -> Dict[str, np.ndarray]:
        """Every parameter under its PyTorch name, as float32 numpy arrays (copies)."""
        return {name: np.frombuffer(b, dtype="<f4").reshape(tuple(shape)).copy() for name, shape, b in self._inner.state()}

    def load_state_dict(self, state_dict: Mapping[str, ArrayLike], strict: bool = True) -> None:
        """Loads parameters by PyTorch name (numpy arrays, or anything ``np.asarray``
        takes). As PyTorch's ``strict=True``: a missing, unexpected or wrongly shaped entry
        raises ValueError and nothing is changed."""
        if not strict:
            raise ValueError("load_state_dict: only strict=True is supported")
        entries = []
        for name, value in state_dict.items():
            shape, data = _to_raw(value, "<f4", name)
            entries.append((str(name), shape, data))
        self._inner.load_state(entries)

    def named_parameters(self) -> List[Tuple[str, np.ndarray]]:
        """``(name, array)`` pairs in the layer's order (copies)."""
        return list(self.state_dict().items())

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)


class Linear(Module):
    """``torch.nn.Linear``: ``y = x Wᵀ + b`` on the last axis of ``x`` (any leading shape)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, seed: Optional[int] = None) -> None:
        _sizes(in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        self._inner = _recur.Dense(in_features, out_features, bias, _seed(seed))

    def forward(self, input: ArrayLike) -> np.ndarray:
        return _from_raw(self._inner.forward(_to_raw(input, "<f4", "input")))


class Embedding(Module):
    """``torch.nn.Embedding``: rows of ``weight`` by index; ids of any shape → ``(*shape, dim)``."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: Optional[int] = None,
        *,
        seed: Optional[int] = None,
    ) -> None:
        _sizes(num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        if padding_idx is not None and padding_idx < 0:
            padding_idx += num_embeddings  # as PyTorch counts a negative padding_idx
        if padding_idx is not None and not 0 <= padding_idx < num_embeddings:
            raise ValueError(f"padding_idx: expected -{num_embeddings} to {num_embeddings - 1}, got {padding_idx}")
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self._inner = _recur.Lookup(num_embeddings, embedding_dim, padding_idx, _seed(seed))

    def forward(self, input: ArrayLike) -> np.ndarray:
        return _from_raw(self._inner.forward(_to_raw(input, "<i8", "input")))


_RNN_MODES = {"tanh": "rnn_tanh", "relu": "rnn_relu"}


class _RNNBase(Module):
    _mode = ""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        seed: Optional[int] = None,
    ) -> None:
        _sizes(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers, proj_size=proj_size)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        self.bidirectional, self.proj_size = bidirectional, proj_size
        self._inner = _recur.Recurrent(
            self._mode, input_size, hidden_size, num_layers, bias, batch_first, float(dropout),
            bidirectional, proj_size, _seed(seed),
        )

    def _run(
        self, input: ArrayLike, h0: Optional[ArrayLike], c0: Optional[ArrayLike], lengths: Optional[Sequence[int]]
    ) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        lens = None if lengths is None else [int(n) for n in np.asarray(lengths).reshape(-1)]
        if lens is not None and any(n < 0 for n in lens):
            raise ValueError(f"lengths: expected numbers >= 0, got {lens}")
        out, h_n, c_n = self._inner.forward(
            _to_raw(input, "<f4", "input"), lens, _opt_raw(h0, "h0"), _opt_raw(c0, "c0")
        )
        return _from_raw(out), _from_raw(h_n), None if c_n is None else _from_raw(c_n)


class RNN(_RNNBase):
    """``torch.nn.RNN`` (Elman, ``nonlinearity="tanh"`` or ``"relu"``).

    ``rnn(input, hx=None, lengths=None)`` → ``(output, h_n)``. ``input`` is ``(T, B, I)``,
    ``(B, T, I)`` with ``batch_first``, or ``(T, I)`` unbatched; ``lengths`` (one per batch
    entry, unsorted) runs each sequence to its own length as ``pack_padded_sequence``
    would: ``output`` is zero past each length and ``h_n`` holds each sequence's last state.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh", bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, *, seed: Optional[int] = None) -> None:
        if nonlinearity not in _RNN_MODES:
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        self._mode = _RNN_MODES[nonlinearity]
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, seed=seed)

    def forward(self, input: ArrayLike, hx: Optional[ArrayLike] = None, lengths: Optional[Sequence[int]] = None) -> Tuple[np.ndarray, np.ndarray]:
        output, h_n, _ = self._run(input, hx, None, lengths)
        return output, h_n


class GRU(_RNNBase):
    """``torch.nn.GRU``: ``gru(input, hx=None, lengths=None)`` → ``(output, h_n)`` (shapes as
    :class:`RNN`)."""

    _mode = "gru"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, *, seed: Optional[int] = None) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, seed=seed)

    def forward(self, input: ArrayLike, hx: Optional[ArrayLike] = None, lengths: Optional[Sequence[int]] = None) -> Tuple[np.ndarray, np.ndarray]:
        output, h_n, _ = self._run(input, hx, None, lengths)
        return output, h_n


class LSTM(_RNNBase):
    """``torch.nn.LSTM`` (with ``proj_size``): ``lstm(input, hx=None, lengths=None)`` →
    ``(output, (h_n, c_n))``; ``hx`` is ``(h0, c0)`` (shapes as :class:`RNN`)."""

    _mode = "lstm"

    def forward(
        self,
        input: ArrayLike,
        hx: Optional[Tuple[ArrayLike, ArrayLike]] = None,
        lengths: Optional[Sequence[int]] = None,
    ) -> Tuple[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
        h0, c0 = (None, None) if hx is None else hx
        output, h_n, c_n = self._run(input, h0, c0, lengths)
        return output, (h_n, _cell_state(c_n))


class _CellBase(Module):
    _mode = ""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, seed: Optional[int] = None) -> None:
        _sizes(input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self._inner = _recur.Cell(self._mode, input_size, hidden_size, bias, _seed(seed))

    def _step(
        self, input: ArrayLike, h: Optional[ArrayLike], c: Optional[ArrayLike]
    ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        h1, c1 = self._inner.forward(_to_raw(input, "<f4", "input"), _opt_raw(h, "hx"), _opt_raw(c, "cx"))
        return _from_raw(h1), None if c1 is None else _from_raw(c1)


class RNNCell(_CellBase):
    """``torch.nn.RNNCell``: ``cell(input, hx=None)`` → ``h1``; ``input`` ``(B, I)`` or ``(I)``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh", *, seed: Optional[int] = None) -> None:
        if nonlinearity not in _RNN_MODES:
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        self._mode = _RNN_MODES[nonlinearity]
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, seed=seed)

    def forward(self, input: ArrayLike, hx: Optional[ArrayLike] = None) -> np.ndarray:
        return self._step(input, hx, None)[0]


class GRUCell(_CellBase):
    """``torch.nn.GRUCell``: ``cell(input, hx=None)`` → ``h1``."""

    _mode = "gru"

    def forward(self, input: ArrayLike, hx: Optional[ArrayLike] = None) -> np.ndarray:
        return self._step(input, hx, None)[0]


class LSTMCell(_CellBase):
    """``torch.nn.LSTMCell``: ``cell(input, hx=None)`` → ``(h1, c1)``; ``hx`` is ``(h, c)``."""

    _mode = "lstm"

    def forward(self, input: ArrayLike, hx: Optional[Tuple[ArrayLike, ArrayLike]] = None) -> Tuple[np.ndarray, np.ndarray]:
        h, c = (None, None) if hx is None else hx
        h1, c1 = self._step(input, h, c)
        return h1, _cell_state(c1)
