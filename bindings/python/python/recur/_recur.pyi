"""Type stubs of the compiled extension ``recur._recur`` (the Rust side of the package).

The public API is ``recur`` and ``recur.nn`` (annotated Python modules, see py.typed); this
module's functions take and return plain values: hypotheses as tuples, arrays as
``(shape, bytes)`` pairs of little-endian float32 (int64 for embedding ids).
"""

from typing import Dict, List, Optional, Sequence, Tuple

__version__: str

# (text, tokens, score, log_prob, truncated, attention rows or None)
_Hypothesis = Tuple[str, List[str], float, float, bool, Optional[List[List[float]]]]
# (output line, [(word, hypotheses)])
_Sentence = Tuple[str, List[Tuple[str, List[_Hypothesis]]]]
_RawIn = Tuple[Sequence[int], bytes]
_RawOut = Tuple[List[int], bytearray]
_StateEntry = Tuple[str, Sequence[int], bytes]

def import_g2p_en(npz: str, out_dir: str, force: bool = False) -> str: ...
def bundled_models() -> List[str]: ...
def set_num_threads(n: int) -> bool: ...
def spell_numbers(text: str) -> str: ...
def train(
    config: Optional[str],
    out: str,
    overrides: List[str] = ...,
    resume: bool = False,
    time_limit: float = 0.0,
    progress: bool = True,
) -> Dict[str, object]: ...

class Model:
    @staticmethod
    def load(spec: str, ensemble: bool = True) -> "Model": ...
    @property
    def location(self) -> str: ...
    @property
    def ensemble_size(self) -> int: ...
    @property
    def config_json(self) -> str: ...
    def translate(
        self,
        inputs: List[str],
        beam: Optional[int] = None,
        nbest: int = 1,
        alpha: float = 0.0,
        max_len: Optional[int] = None,
        min_len: int = 0,
        attention: bool = False,
        word_freq_weight: Optional[float] = None,
    ) -> List[List[_Hypothesis]]: ...
    def translate_sentences(
        self,
        lines: List[str],
        beam: Optional[int] = None,
        nbest: int = 1,
        alpha: float = 0.0,
        max_len: Optional[int] = None,
        min_len: int = 0,
        attention: bool = False,
        word_freq_weight: Optional[float] = None,
    ) -> List[_Sentence]: ...

class Recurrent:
    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bias: bool,
        batch_first: bool,
        dropout: float,
        bidirectional: bool,
        proj_size: int,
        seed: int,
    ) -> None: ...
    def state(self) -> List[Tuple[str, List[int], bytes]]: ...
    def load_state(self, entries: List[_StateEntry]) -> None: ...
    def forward(
        self,
        input: _RawIn,
        lengths: Optional[List[int]] = None,
        h0: Optional[_RawIn] = None,
        c0: Optional[_RawIn] = None,
    ) -> Tuple[_RawOut, _RawOut, Optional[_RawOut]]: ...

class Cell:
    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool, seed: int) -> None: ...
    def state(self) -> List[Tuple[str, List[int], bytes]]: ...
    def load_state(self, entries: List[_StateEntry]) -> None: ...
    def forward(
        self, input: _RawIn, h: Optional[_RawIn] = None, c: Optional[_RawIn] = None
    ) -> Tuple[_RawOut, Optional[_RawOut]]: ...

class Dense:
    def __init__(self, in_features: int, out_features: int, bias: bool, seed: int) -> None: ...
    def state(self) -> List[Tuple[str, List[int], bytes]]: ...
    def load_state(self, entries: List[_StateEntry]) -> None: ...
    def forward(self, input: _RawIn) -> _RawOut: ...

class Lookup:
    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: Optional[int], seed: int) -> None: ...
    def state(self) -> List[Tuple[str, List[int], bytes]]: ...
    def load_state(self, entries: List[_StateEntry]) -> None: ...
    def forward(self, ids: _RawIn) -> _RawOut: ...
