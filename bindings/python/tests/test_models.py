"""recur.load / Model.translate: results, options and errors as `recur translate` has them,
and one model used from many threads at once."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import recur


def test_words_in_strings_out(hi_translit):
    assert hi_translit.translate(["ghar", "kitaab"]) == ["घर", "किताब"]
    assert hi_translit.translate("ghar") == "घर"
    assert hi_translit.translate([]) == []


def test_nbest_hypotheses(hi_translit):
    [hyps] = hi_translit.translate(["ghar"], beam=4, nbest=3)
    assert len(hyps) == 3 and hyps[0].text == "घर"
    assert hyps[0].tokens == ["घ", "र"] and "".join(hyps[1].tokens) == hyps[1].text
    assert hyps[0].score >= hyps[1].score >= hyps[2].score
    assert not hyps[0].truncated and hyps[0].attention is None


def test_attention_on_request(hi_translit):
    [best] = hi_translit.translate("kitaab", nbest=1, attention=True)
    assert isinstance(best.attention, np.ndarray) and best.attention.dtype == np.float32
    assert best.attention.shape[1] == len("kitaab")
    np.testing.assert_allclose(best.attention.sum(axis=1), 1.0, rtol=1e-5)


def test_sentence_mode(hi_translit):
    line = "mere paas 25 rupaye hain."
    out = hi_translit.translate(line, sentences=True)
    assert " 25 " in out and out.endswith("।")
    detailed = hi_translit.translate([line], sentences=True, beam=3, nbest=2)[0]
    assert detailed.text == out
    assert [w.word for w in detailed.words] == ["mere", "paas", "rupaye", "hain"]
    assert all(len(w.hypotheses) == 2 for w in detailed.words)


def test_cli_defaults_and_option_errors(hi_translit):
    # Greedy and beam 5 (the default) may differ; nbest must fit the beam.
    assert hi_translit.translate("ghar", beam=1) == "घर"
    with pytest.raises(ValueError, match="nbest"):
        hi_translit.translate("ghar", nbest=6)
    with pytest.raises(ValueError, match="beam"):
        hi_translit.translate("ghar", beam=0)
    with pytest.raises(ValueError, match="max_len"):
        hi_translit.translate("ghar", max_len=0)
    with pytest.raises(ValueError, match="alpha"):
        hi_translit.translate("ghar", alpha=float("nan"))
    with pytest.raises(TypeError):
        hi_translit.translate(["ghar", 3])
    with pytest.raises(ValueError, match="min_len"):
        hi_translit.translate("ghar", min_len=-1)
    [[h]] = hi_translit.translate(["kitaab"], nbest=1, max_len=2)
    assert h.truncated and len(h.tokens) == 2


def test_input_limit_is_a_clear_error(hi_translit):
    with pytest.raises(ValueError, match="characters"):
        hi_translit.translate("a" * 100_000)


def test_unknown_model_is_a_value_error():
    with pytest.raises(ValueError):
        recur.load("no-such-model-here")


def test_bundled_models_and_config():
    assert {"hi-translit", "en-g2p"} <= set(recur.bundled_models())
    m = recur.load("en-g2p")
    assert m.config["data"]["tgt_tokens"] == "symbols"
    assert m.translate("hello") == "HH AH L OW"  # CMUdict's first entry, from its lexicon


def test_threads_share_one_model(hi_translit):
    words = ["ghar", "kitaab", "pyaar", "dost", "namaste", "bharat", "duniya", "paani"] * 8
    chunks = [words[i : i + 4] for i in range(0, len(words), 4)]
    sequential = [hi_translit.translate(c, beam=3, nbest=2) for c in chunks]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda c: hi_translit.translate(c, beam=3, nbest=2), chunks))
    assert threaded == sequential


def test_set_num_threads_checks_its_argument():
    with pytest.raises(ValueError, match="n >= 0"):
        recur.set_num_threads(-1)
    assert recur.set_num_threads(0)


def test_ctrl_c_interrupts_a_long_translate():
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO

    script = f"""
import signal
import recur
signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
words = open({str(REPO / "bench" / "words1000.txt")!r}).read().split() * 50
model = recur.load("en-g2p")
print("ready", flush=True)
model.translate(words)  # 50,000 words at beam 5: far longer than this test waits
print("finished", flush=True)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "finished" not in out and "KeyboardInterrupt" in err, err
    assert time.monotonic() - start < 30  # one chunk of 256 words, not the whole call


def test_word_frequency_weight_is_an_option():
    m = recur.load("hi-translit")
    assert m.translate("men", beam=4) == "में"  # the model's list and λ
    assert m.translate("men", beam=4, word_freq_weight=0) == "मेन"  # the models alone
    assert m.translate("vah ghar gaya", sentences=True) == "वह घर गया"  # sentence λ
    with pytest.raises(ValueError, match="word_freq_weight"):
        m.translate("men", word_freq_weight=-1)


def test_an_ensemble_decodes_with_its_members_as_the_cli_does(hi_translit):
    # hi-translit's directory lists two members (seed-3, seed-4): `recur translate` decodes
    # with all three models, and so does recur.load; ensemble=False gives the first alone.
    alone = recur.load("hi-translit", ensemble=False)
    assert (hi_translit.ensemble_size, alone.ensemble_size) == (3, 1)
    [together] = hi_translit.translate(["kitaab"], beam=4, nbest=1)
    [single] = alone.translate(["kitaab"], beam=4, nbest=1)
    assert together[0].text == single[0].text == "किताब"
    assert together[0].score != single[0].score, "the members took no part"
