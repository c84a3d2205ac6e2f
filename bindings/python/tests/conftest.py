"""Shared helpers: the repository's paths and a numpy reader of the golden fixtures."""

import json
import struct
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "crates" / "recur" / "tests" / "fixtures"
G2P_EN_DATA = REPO / "crates" / "recur-import" / "tests" / "data" / "g2p_en"

_DTYPES = {"F32": "<f4", "F64": "<f8", "I64": "<i8"}


def read_fixture(path):
    """A `recur-fixture/1` safetensors file as `(case dict, {name: numpy array})`, read with
    numpy only (no safetensors package needed)."""
    raw = path.read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    case = json.loads(header.pop("__metadata__")["case"])
    data = raw[8 + header_len :]
    arrays = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        arr = np.frombuffer(data[start:end], dtype=_DTYPES[info["dtype"]])
        arrays[name] = arr.reshape(info["shape"])
    return case, arrays


@pytest.fixture(scope="session")
def hi_translit():
    import recur

    return recur.load("hi-translit")
