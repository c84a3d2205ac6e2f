"""recur.G2p (g2p_en's call convention) and recur.import_g2p_en (g2p_en's own checkpoint,
whose predictions must equal g2p_en's `predict` on the 502 parity words)."""

import pytest

import recur
from conftest import G2P_EN_DATA


@pytest.fixture(scope="module")
def g2p_en_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("g2p") / "g2p-en"
    summary = recur.import_g2p_en(G2P_EN_DATA / "checkpoint20.npz", out)
    assert "30 source / 74 target symbols" in summary
    return out


def expected_pairs():
    lines = (G2P_EN_DATA / "expected.tsv").read_text(encoding="utf-8").splitlines()
    return [tuple(line.split("\t", 1)) for line in lines]


def test_imported_checkpoint_equals_g2p_en_predict_on_every_word(g2p_en_model):
    pairs = expected_pairs()
    assert len(pairs) == 502
    model = recur.load(g2p_en_model)
    got = model.translate([w for w, _ in pairs])
    diffs = [(w, want, g) for (w, want), g in zip(pairs, got) if want != g]
    assert not diffs, f"{len(diffs)} of {len(pairs)} differ, e.g. {diffs[:5]}"


def test_g2p_with_the_imported_model_gives_predict_per_word(g2p_en_model):
    pairs = [(w, p) for w, p in expected_pairs() if w.isalpha() and w.islower()][:100]
    g2p = recur.G2p(g2p_en_model)
    phonemes = g2p(" ".join(w for w, _ in pairs))
    words = " ".join(phonemes).split("   ")  # " " between words, joined by " "
    assert words == [p for _, p in pairs]


def test_import_refuses_to_overwrite(g2p_en_model, tmp_path):
    with pytest.raises(ValueError, match="exists"):
        recur.import_g2p_en(G2P_EN_DATA / "checkpoint20.npz", g2p_en_model)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a model directory"):
        recur.import_g2p_en(G2P_EN_DATA / "checkpoint20.npz", tmp_path, force=True)
    with pytest.raises(ValueError):
        recur.import_g2p_en(tmp_path / "notes.txt", tmp_path / "new")


def test_g2p_call_convention():
    g2p = recur.G2p()
    out = g2p("Hello, World! The café's re-entry.")
    assert out[:4] == ["HH", "AH", "L", "OW"]  # CMUdict's first entry (the model says EH)
    assert out[4:7] == [" ", ",", " "]
    assert "!" in out and out[-1] == "."
    assert out.count(" ") == 7  # hello , world ! the cafe's re-entry .
    assert all(p == p.strip() or p == " " for p in out)
    assert g2p("") == []
    with pytest.raises(TypeError):
        g2p(None)


def test_g2p_spells_numbers_and_uses_the_dictionary():
    g2p = recur.G2p()
    words = " ".join(g2p("I have 25 books, since 1984.")).split("   ")
    assert words[:2] == ["AY", "HH AE V"]
    assert words[2:4] == ["T W EH N T IY", "F AY V"]
    assert words[4] == "B UH K S"
    assert words[7:10] == ["N AY N T IY N", "EY T IY", "F AO R"]
