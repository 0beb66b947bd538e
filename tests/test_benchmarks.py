"""The benchmark scripts run in their ``--quick`` mode, so they cannot rot.

Each runs in a subprocess (the scripts import ``_common`` from their own folder) and writes
its JSON into a temporary folder, not into ``benchmarks/results``.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def run_quick(
    script: str, tmp_path: Path, *args: str, timeout: int = 300
) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(BENCH / script), "--quick", "--results-dir", str(tmp_path), *args]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    assert out.returncode == 0, f"{cmd} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out


def test_attention_quick(tmp_path):
    out = run_quick("attention.py", tmp_path)
    result = json.loads((tmp_path / "attention_quick.json").read_text())
    assert result["machine"]["versions"]["jax"]
    kernels = {row["kernel"] for row in result["rows"]}
    assert {"jax.nn.dot_product_attention", "dot fused", "dot explicit", "l1 explicit"} <= kernels
    for row in result["rows"]:
        assert row["forward"]["median_ms"] > 0
        assert row["forward_backward"]["median_ms"] > 0
        assert row["temp_bytes"]["forward_backward"] > 0
    reference = result["rows"][0]
    assert reference["forward"]["x_reference"] == 1.0
    assert "l1_temp_memory_O(L^2)" in result["goals"]
    assert "fused scorings" in out.stdout


def test_train_throughput_quick(tmp_path):
    # Keras runs only where an interpreter with TensorFlow is configured
    # (SEMALIGN_KERAS_PYTHON); otherwise the script says why it skips that side.
    out = run_quick("train_throughput.py", tmp_path)
    result = json.loads((tmp_path / "train_throughput_quick.json").read_text())
    (rows,) = result["phases"].values()
    arms = {row["arm"]: row for row in rows}
    assert arms["semalign D64H4"]["tokens_per_s"] > 0
    assert arms["microbatch=2 chunk=0"]["tokens_per_s"] > 0
    assert arms["microbatch=2 chunk=0 on 2 devices"]["tokens_per_s"] > 0
    if result["keras"]["python"] is None:
        assert "Keras side skipped:" in out.stdout
        assert "x_keras" not in arms["semalign D64H4"]
    else:
        assert arms["keras D64H4"]["x_keras"] == 1.0
        assert arms["semalign D64H4"]["x_keras"] > 0


def test_lm_quick(tmp_path):
    out = run_quick("lm.py", tmp_path)
    result = json.loads((tmp_path / "lm_quick.json").read_text())
    assert [r["scoring"] for r in result["rows"]] == ["dot", "differential"]
    for row in result["rows"]:
        assert row["test_perplexity"] > 1
    for d in result["decoding"]:
        assert d["same_tokens"] and d["speedup"] > 0
    assert "decoding" in out.stdout
    costs = result["step_seconds"]
    assert set(costs) == {"dot", "differential"} and min(costs.values()) > 0
    slowest = max(costs, key=costs.get)
    rows = {r["scoring"]: r for r in result["rows"]}
    for b in result["budget_by_step_cost"]:
        fits = int(costs[slowest] / costs[b["scoring"]] + 1e-9)
        assert b["epochs_that_would_fit"] == fits >= 1
        assert b["epochs_in_budget"] == min(fits, len(rows[b["scoring"]]["epoch_seconds"]))
        val = rows[b["scoring"]]["val_perplexity_by_epoch"][: b["epochs_in_budget"]]
        assert b["val_perplexity"] == min(val)


def test_long_texts_quick(tmp_path):
    run_quick("long_texts.py", tmp_path)
    result = json.loads((tmp_path / "long_texts_quick.json").read_text())
    rows = {(r["long_texts"], r["truncation"]): r for r in result["rows"]}
    assert set(rows) == {("cut", "head"), ("cut", "tail"), ("cut", "head-tail"), ("chunks", None)}
    assert result["trained_with"] == "head" and result["max_len"] == 8
    counts = {r["longer_than_max_len"] for r in rows.values()}
    assert len(counts) == 1 and 0 < counts.pop() <= rows["chunks", None]["examples"]
    for r in rows.values():  # accuracy over all texts is a mean of 0/1 over `examples` texts
        assert r["test_accuracy"] * r["examples"] == pytest.approx(
            round(r["test_accuracy"] * r["examples"]), abs=1e-6
        )


def test_pretraining_quick(tmp_path):
    # Three trainings on the whole rotten-tomatoes split (tiny models): minutes when loaded.
    run_quick("pretraining.py", tmp_path, timeout=900)
    result = json.loads((tmp_path / "pretraining_quick.json").read_text())
    rows = {(r["stage"], r.get("seed")): r for r in result["rows"]}
    assert set(rows) == {("pretrain", None), ("finetuned", 0), ("scratch", 0)}
    mlm = rows["pretrain", None]
    assert mlm["test_perplexity"] > 1 and 0 <= mlm["test_masked_token_accuracy"] <= 1
    finetuned = json.loads((tmp_path / "runs" / "finetuned-seed0" / "config.json").read_text())
    assert finetuned["init_from"]  # started from the MLM trunk
    assert "init_from" not in json.loads(
        (tmp_path / "runs" / "scratch-seed0" / "config.json").read_text()
    )
    gain = rows["finetuned", 0]["test_accuracy"] - rows["scratch", 0]["test_accuracy"]
    assert result["summary"]["gain_points"] == pytest.approx(100 * gain)
    for row in result["rows"]:
        assert row["wall_seconds"] > 0 and len(row["load_average"]) == 3
    again = run_quick("pretraining.py", tmp_path, timeout=900)  # finished runs are kept, not rerun
    assert "kept from" in again.stdout
    assert json.loads((tmp_path / "pretraining_quick.json").read_text())["rows"] == result["rows"]
    # Another variant on the same pretraining run: its row is reused, nothing pretrained.
    reuse_args = ("--pretrained-from", "pretraining_quick", "--tag", "reuse", "--no-scratch")
    run_quick("pretraining.py", tmp_path, *reuse_args, timeout=900)
    reuse = json.loads((tmp_path / "pretraining_quick_reuse.json").read_text())["rows"]
    assert [r["stage"] for r in reuse] == ["pretrain", "finetuned"]
    assert reuse[0]["reused_from"] == "pretraining_quick" and reuse[0]["run"] == mlm["run"]
    # ... and refused when that run was pretrained on another corpus than asked.
    cmd = [sys.executable, str(BENCH / "pretraining.py"), "--quick", "--results-dir"]
    cmd += [str(tmp_path), "--pretrained-from", "pretraining_quick", "--tag", "other"]
    cmd += ["--pretrain-dataset", "imdb"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode != 0 and "pretrained otherwise (dataset)" in out.stderr


def test_pretraining_contrastive_quick(tmp_path):
    # SimCSE as the pretraining, its own dropout (the quick model's is 0: the views would
    # coincide), then the fine-tuned arm only.
    args = ("--pretrain-task", "contrastive", "--pretrain-dropout", "0.3", "--no-scratch")
    out = run_quick("pretraining.py", tmp_path, *args, timeout=900)
    result = json.loads((tmp_path / "pretraining_quick_contrastive.json").read_text())
    pre, tuned = result["rows"]
    assert pre["stage"] == "pretrain" and tuned["stage"] == "finetuned"
    assert pre["test_loss"] > 0 and 0 <= pre["test_accuracy"] <= 1
    assert -1 <= pre["test_negative_cosine"] < pre["test_positive_cosine"] <= 1
    assert "own-view top-1" in out.stdout
    config = json.loads((tmp_path / "runs" / "contrastive" / "config.json").read_text())
    assert config["model"]["dropout"] == 0.3 and config["task"] == "contrastive"
    tuned_config = json.loads((tmp_path / "runs" / "finetuned-seed0" / "config.json").read_text())
    assert tuned_config["model"]["dropout"] == 0.0 and tuned_config["init_from"]


def test_stsb_pretrained_quick(tmp_path):
    # A 1-epoch MLM on 300 STS-B training rows, then both similarity arms (tiny models).
    stsb = BENCH.parents[1] / "shared" / "datasets" / "stsb"
    if not stsb.is_dir():
        pytest.skip(f"STS-B is not at {stsb} (../shared absent)")
    run_quick("stsb.py", tmp_path, "--pretrain-epochs", "1", "--scorings", "dot")
    result = json.loads((tmp_path / "stsb_pretrained_quick.json").read_text())
    (mlm,) = result["pretrain"]
    assert 0 < mlm["sentences"] <= 600  # both columns of 300 training rows, no dev or test text
    corpus = (tmp_path / "runs" / "sts-train-sentences.txt").read_text().splitlines()
    assert len(corpus) == mlm["sentences"]
    assert mlm["test_perplexity"] > 1 and 0 <= mlm["test_masked_token_accuracy"] <= 100
    assert len(mlm["val_masked_token_accuracy_by_epoch"]) == 1
    rows = {(r["arm"], r["seed"]): r for r in result["rows"]}
    assert set(rows) == {("scratch", 0), ("pretrained", 0)}
    assert rows["scratch", 0]["init_from"] is None
    config = json.loads((tmp_path / "runs" / "pretrained-seed0" / "config.json").read_text())
    assert config["init_from"]["run"] == mlm["run"]  # the fine-tune's trunk is the MLM run's
    assert rows["pretrained", 0]["init_from"] == config["init_from"]
    for r in rows.values():
        assert r["best_epoch"] == 1 and len(r["dev_spearman_cosine_by_epoch"]) == 1
    summary = result["summary"]
    gain = (
        rows["pretrained", 0]["test_spearman"]["cosine"]
        - rows["scratch", 0]["test_spearman"]["cosine"]
    )
    assert summary["test_gain_points"] == pytest.approx(gain, abs=0.011)
    assert summary["pretrained"]["test_spearman_std"] == 0.0  # one seed
    # The levers, from the same MLM run: a smaller trunk lr, dev-only screening, diagnosis.
    shot = tmp_path / "shot"
    run_quick(
        "stsb.py",
        shot,
        "--init-from",
        mlm["run"],
        "--encoder-lr-scale",
        "0.1",
        "--screen",
        "--no-scratch",
        "--scorings",
        "dot",
        "--tag",
        "lever",
        "--runs-dir",
        str(shot / "r"),
    )
    lever = json.loads((shot / "stsb_pretrained_lever_quick.json").read_text())
    assert lever["pretrain"][0]["run"] == mlm["run"] and lever["pretrain"][0]["reused"]
    assert lever["pretrain"][0]["settings"] == mlm["settings"]  # as the MLM run saved it
    assert lever["settings"]["pretrained_arm"] == {"encoder_lr_scale": 0.1}
    (row,) = lever["rows"]
    assert row["arm"] == "pretrained" and row["encoder_lr_scale"] == 0.1
    assert "test_spearman" not in row and "test" not in lever["summary"]["pretrained"]
    tuned = json.loads((shot / "r" / "pretrained-seed0" / "config.json").read_text())
    assert tuned["train"]["encoder_lr_scale"] == 0.1
    # A screen never reads sts-test: its run's own test line is sts-dev evaluated again.
    log = (shot / "r" / "pretrained-seed0" / "metrics.jsonl").read_text().splitlines()
    log = [json.loads(x) for x in log]
    (test,) = [r for r in log if r["split"] == "test"]
    (kept,) = [r for r in log if r["split"] == "validation" and r["epoch"] == test["epoch"]]
    assert test["count"] == kept["val_count"]
    assert test["spearman_cosine"] == pytest.approx(kept["val_spearman_cosine"], abs=1e-6)
    assert lever["lexical_baseline"]["test_spearman"] is None
    assert tuned["init_from"]["run"] == mlm["run"]
    run_quick("stsb.py", shot, "--diagnose", f"{mlm['run']},{shot / 'r' / 'pretrained-seed0'}")
    trunks = json.loads((shot / "stsb_pretrained_diagnosis.json").read_text())["rows"]
    assert [t["trunk"] for t in trunks] == ["mlm-1", "random init", "pretrained-seed0"]
    for t in trunks:
        assert -100 <= t["dev_spearman_plain_cosine"] <= 100
        assert -1 <= t["anisotropy_mean_cosine"] <= 1
        assert 0 < t["top_direction_variance_share"] <= 1


def test_stsb_pretrain_corpus(tmp_path):
    # Training text only, first-seen order, duplicates dropped; SST-2's labels cut off.
    import importlib.util

    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("stsb_bench", BENCH / "stsb.py")
    stsb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stsb)
    data = tmp_path / "stsb"
    data.mkdir()
    rows = {
        "train": [
            "g\tf\t2012\t1\t3.0\tthe cat sits\ta dog runs",
            "g\tf\t2012\t2\t1.0\ta dog runs\tbirds  fly",
        ],
        "dev": ["g\tf\t2012\t3\t2.0\tDEV ONE\tdev two"],
        "test": ["g\tf\t2012\t4\t2.0\tTEST ONE\ttest two"],
    }
    for split, lines in rows.items():
        (data / f"sts-{split}.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / "sentiment-train").write_text("a dog runs \t1\ngreat film\t1\nbad\t0\n")
    path, counts = stsb.pretrain_corpus(
        data, ["stsb", "sst2:2"], tmp_path / "c.txt", datasets=tmp_path
    )
    assert path.read_text().splitlines() == [
        "the cat sits",
        "a dog runs",
        "birds fly",
        "great film",
    ]
    assert counts == {"stsb": 3, "sst2:2": 2}


def test_stsb_contrastive_pretraining_quick(tmp_path):
    # SimCSE as the pretraining task: its temperature and dropout are recorded, its
    # figures are the contrastive report's, and the fine-tune starts from its trunk.
    stsb = BENCH.parents[1] / "shared" / "datasets" / "stsb"
    if not stsb.is_dir():
        pytest.skip(f"STS-B is not at {stsb} (../shared absent)")
    args = ["--pretrain-epochs", "1", "--pretrain-task", "contrastive", "--temperature", "0.1"]
    args += ["--pretrain-dropout", "0.2", "--scorings", "dot", "--no-scratch", "--screen"]
    args += ["--pretrain-batch-size", "16", "--lr", "2e-3"]
    run_quick("stsb.py", tmp_path, *args)
    result = json.loads((tmp_path / "stsb_pretrained_quick.json").read_text())
    (simcse,) = result["pretrain"]
    assert simcse["settings"]["task"] == "contrastive"
    assert simcse["settings"]["temperature"] == 0.1 and simcse["settings"]["dropout"] == 0.2
    assert simcse["settings"]["batch_size"] == 16 and result["settings"]["train"]["lr"] == 2e-3
    assert 0 <= simcse["test"]["accuracy"] <= 1 and simcse["test"]["positive_cosine"] < 1
    assert len(simcse["val_loss_by_epoch"]) == len(simcse["val_accuracy_by_epoch"]) == 1
    config = json.loads((tmp_path / "runs" / "pretrained-seed0" / "config.json").read_text())
    assert config["init_from"]["run"] == simcse["run"] and config["model"]["dropout"] == 0.0
    assert config["train"]["lr"] == 2e-3 and config["train"]["batch_size"] == 32
    pretrain_config = json.loads((Path(simcse["run"]) / "config.json").read_text())
    assert pretrain_config["train"]["batch_size"] == 16
    (row,) = result["rows"]
    assert "test_spearman" not in row
