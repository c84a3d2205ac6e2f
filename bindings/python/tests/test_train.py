"""recur.train: a small run end to end (summary, model usable with recur.load), option
errors, and Ctrl-C (SIGINT) stopping a run after a checkpoint."""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import recur

TINY = {
    "model.cell": "gru",
    "model.emb_dim": 16,
    "model.hidden_size": 32,
    "model.attention": "none",
    "model.attn_dim": 16,
    "model.dropout": 0.0,
    "train.max_tokens": 400,
    "train.eval_every": 10,
    "data.dev_holdout": 20,
}


def reversal_data(path, n=300, seed=1):
    """`word<TAB>reversed word` pairs over a small alphabet."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        word = "".join(rng.choice("abcdef") for _ in range(rng.randint(2, 6)))
        lines.append(f"{word}\t{word[::-1]}\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_train_returns_its_summary_and_a_loadable_model(tmp_path):
    data = reversal_data(tmp_path / "rev.tsv")
    out = tmp_path / "run"
    s = recur.train(None, out, {**TINY, "data.train": data, "train.max_steps": 30}, progress=False)
    assert s.end == "finished" and s.steps == 30
    assert s.best_dev_accuracy is not None and 0.0 <= s.best_dev_accuracy <= 1.0
    assert os.path.isdir(s.best_dir) and os.path.isdir(s.last_dir) and os.path.isfile(s.log)
    model = recur.load(out)  # a run directory loads its best/
    assert isinstance(model.translate("abc", beam=1), str)
    again = recur.train(None, out, {**TINY, "data.train": data, "train.max_steps": 30}, resume=True, progress=False)
    assert again.end == "already_finished"


def test_train_errors_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match="train"):
        recur.train(None, tmp_path / "run", {}, progress=False)  # no data.train
    with pytest.raises(ValueError, match="time_limit"):
        recur.train(None, tmp_path / "run", {}, time_limit=-1)
    with pytest.raises(ValueError):
        recur.train(None, tmp_path / "run", {"train.nope": 1})
    with pytest.raises(TypeError):
        recur.train(None, tmp_path / "run", {"train.lr": object()})


def test_ctrl_c_stops_after_a_checkpoint(tmp_path):
    data = reversal_data(tmp_path / "rev.tsv", n=2000)
    out = tmp_path / "run"
    overrides = {**TINY, "data.train": str(data), "train.max_steps": 1_000_000, "train.eval_every": 50}
    script = textwrap.dedent(
        f"""
        import signal
        import recur
        # A shell running us in the background may have left SIGINT ignored, and Python keeps
        # an ignored SIGINT ignored: give it Python's usual KeyboardInterrupt handler.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        recur.train(None, {str(out)!r}, {overrides!r})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # reach training: the data is read, the first steps run
        deadline = time.monotonic() + 60
        while not (out / "log.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err and "checkpoint saved" in err, err
    assert "step 1/1000000 epoch 1 loss" in err and "NaN" not in err, err  # the progress line
    assert (out / "last").is_dir()
    resumed = recur.train(None, out, {**overrides, "train.max_steps": 1}, resume=True, progress=False)
    assert resumed.end in ("finished", "already_finished")
