"""recur.nn against the PyTorch golden fixtures (crates/recur/tests/fixtures): every forward
case of Embedding, Linear, RNN, LSTM, GRU and the cells, within the fixtures' output tolerance
(|got - want| <= 1e-5 + 1e-4 |want|, see /work/shared/fixtures/README.md)."""

import numpy as np
import pytest

import recur.nn as nn
from conftest import FIXTURES, read_fixture

ATOL, RTOL = 1e-5, 1e-4
LAYER_KINDS = {"embedding", "linear", "rnn", "lstm", "gru", "rnn_cell", "lstm_cell", "gru_cell"}


def layer_cases():
    cases = []
    for path in sorted(FIXTURES.glob("*.safetensors")):
        case, arrays = read_fixture(path)
        if case["kind"] in LAYER_KINDS:
            cases.append(pytest.param(case, arrays, id=path.stem))
    return cases


def parameters(arrays):
    """The fixture's parameters: float32 arrays that are neither inputs nor results."""
    not_params = {"input", "h0", "c0", "lengths", "output", "h_n", "c_n", "h1", "c1"}
    return {
        k: v
        for k, v in arrays.items()
        if k not in not_params and not k.startswith("grad") and v.dtype == np.float32
    }


def assert_close(got, want, name):
    assert got.dtype == np.float32, name
    assert got.shape == want.shape, f"{name}: shape {got.shape}, want {want.shape}"
    err = np.abs(got.astype(np.float64) - want)
    bound = ATOL + RTOL * np.abs(want)
    worst = float(np.max(err - bound)) if err.size else 0.0
    assert np.all(err <= bound), f"{name}: exceeds the tolerance by {worst:g}"


def build(case):
    kind = case["kind"]
    if kind == "embedding":
        return nn.Embedding(case["num_embeddings"], case["embedding_dim"], case["padding_idx"])
    if kind == "linear":
        return nn.Linear(case["in_features"], case["out_features"], case["bias"])
    if kind.endswith("_cell"):
        cls = {"rnn_cell": nn.RNNCell, "lstm_cell": nn.LSTMCell, "gru_cell": nn.GRUCell}[kind]
        return cls(case["input_size"], case["hidden_size"], case["bias"])
    args = dict(
        num_layers=case["num_layers"],
        bias=case["bias"],
        batch_first=case["batch_first"],
        bidirectional=case["bidirectional"],
    )
    if kind == "rnn":
        return nn.RNN(case["input_size"], case["hidden_size"], nonlinearity=case["nonlinearity"], **args)
    if kind == "gru":
        return nn.GRU(case["input_size"], case["hidden_size"], **args)
    return nn.LSTM(case["input_size"], case["hidden_size"], proj_size=case["proj_size"], **args)


@pytest.mark.parametrize("case,arrays", layer_cases())
def test_forward_matches_pytorch(case, arrays):
    layer = build(case)
    layer.load_state_dict(parameters(arrays))
    kind = case["kind"]
    x = arrays["input"]
    if kind in ("embedding", "linear"):
        assert_close(layer(x), arrays["output"], "output")
    elif kind == "lstm_cell":
        hx = (arrays["h0"], arrays["c0"]) if "h0" in arrays else None
        h1, c1 = layer(x, hx)
        assert_close(h1, arrays["h1"], "h1")
        assert_close(c1, arrays["c1"], "c1")
    elif kind.endswith("_cell"):
        assert_close(layer(x, arrays.get("h0")), arrays["h1"], "h1")
    else:
        lengths = arrays.get("lengths")
        if kind == "lstm":
            hx = (arrays["h0"], arrays["c0"]) if "h0" in arrays else None
            output, (h_n, c_n) = layer(x, hx, lengths=lengths)
            assert_close(c_n, arrays["c_n"], "c_n")
        else:
            output, h_n = layer(x, arrays.get("h0"), lengths=lengths)
        assert_close(output, arrays["output"], "output")
        assert_close(h_n, arrays["h_n"], "h_n")


def test_every_layer_kind_has_cases():
    kinds = {p.values[0]["kind"] for p in layer_cases()}
    assert kinds == LAYER_KINDS


def test_state_dict_round_trip_and_pytorch_names():
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2, seed=1)
    state = lstm.state_dict()
    assert "weight_hr_l1_reverse" in state and state["weight_ih_l0"].shape == (16, 3)
    other = nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2, seed=2)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    assert not np.array_equal(other(x)[0], lstm(x)[0])
    other.load_state_dict(state)
    np.testing.assert_array_equal(other(x)[0], lstm(x)[0])


def test_same_seed_same_weights():
    a, b = nn.GRU(3, 4, seed=7), nn.GRU(3, 4, seed=7)
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[k])


def test_load_state_dict_is_strict_and_atomic():
    lin = nn.Linear(3, 2, seed=0)
    before = lin.state_dict()
    with pytest.raises(ValueError, match="bias"):
        lin.load_state_dict({"weight": np.zeros((2, 3), np.float32)})
    with pytest.raises(ValueError, match="unexpected key"):
        lin.load_state_dict({**before, "extra": np.zeros(1, np.float32)})
    with pytest.raises(ValueError, match="shape"):
        lin.load_state_dict({"weight": np.zeros((3, 3), np.float32), "bias": before["bias"]})
    for k, v in lin.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_shape_errors_carry_recurs_message():
    rnn = nn.RNN(3, 4)
    with pytest.raises(ValueError, match="input"):
        rnn(np.zeros((5, 2, 7), np.float32))
    with pytest.raises(ValueError):
        rnn(np.zeros((5, 2, 3), np.float32), lengths=[9, 1])
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError):
        nn.Embedding(5, 2)(np.array([5]))
    with pytest.raises(ValueError, match="integer"):
        nn.Embedding(5, 2)(np.array([0.5]))


def test_lengths_batch_first_and_float64_input():
    gru = nn.GRU(2, 3, batch_first=True, seed=3)
    x = np.random.default_rng(1).standard_normal((2, 4, 2))  # float64: converted
    out, h_n = gru(x, lengths=[4, 2])
    assert out.shape == (2, 4, 3) and h_n.shape == (1, 2, 3)
    assert np.all(out[1, 2:] == 0)
    alone, h_alone = gru(x[1:, :2])
    np.testing.assert_allclose(h_n[:, 1], h_alone[:, 0], rtol=1e-6, atol=1e-7)


def test_negative_sizes_and_lengths_are_value_errors():
    for make in (lambda: nn.LSTM(-1, 4), lambda: nn.GRUCell(3, -2), lambda: nn.Linear(2, -1),
                 lambda: nn.Embedding(4, 2, padding_idx=-5)):
        with pytest.raises(ValueError, match=">= 0|padding_idx"):
            make()
    with pytest.raises(ValueError, match="lengths"):
        nn.GRU(2, 3)(np.zeros((4, 2, 2), np.float32), lengths=[4, -1])
    assert nn.Embedding(4, 2, padding_idx=-1).padding_idx == 3
