"""Task-only options (``TaskSpec.options``): read by their tasks, refused by the others."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from semalign import tasks
from semalign.cli import app
from semalign.workflows.options import refuse_other_tasks_options

runner = CliRunner()


def test_every_task_only_option_is_a_train_option_some_task_reads():
    import inspect

    from semalign.api.train import train

    declared = {n for spec in tasks.TASKS.values() for n in spec.options}
    assert declared == {"stream", "whole_word_masking", "temperature"}
    assert declared <= set(inspect.signature(train).parameters)


@pytest.mark.parametrize(
    ("task", "option", "value", "readers"),
    [
        ("classification", "temperature", 0.1, "contrastive"),
        ("similarity", "whole_word_masking", True, "mlm, rtd"),
        ("contrastive", "whole_word_masking", True, "mlm, rtd"),
        ("mlm", "temperature", 0.1, "contrastive"),
        ("classification", "stream", True, "causal-lm, mlm, rtd, contrastive"),
    ],
)
def test_another_tasks_option_is_refused_in_one_line(task, option, value, readers):
    flag = "--" + option.replace("_", "-")
    with pytest.raises(ValueError) as err:
        refuse_other_tasks_options({option: value}, tasks.get(task))
    line = str(err.value)
    assert line == f"{flag} is an option of --task {readers}, not of --task {task}: leave it out"


@pytest.mark.parametrize("task", tasks.names())
def test_a_tasks_own_options_and_unset_ones_pass(task):
    spec = tasks.get(task)
    own = {"stream": True, "whole_word_masking": True, "temperature": 0.1}
    refuse_other_tasks_options({n: v for n, v in own.items() if n in spec.options}, spec)
    refuse_other_tasks_options({"stream": False, "whole_word_masking": False}, spec)
    refuse_other_tasks_options({"temperature": None, "stream": None}, spec)


def test_command_line_refuses_it_before_reading_data(tmp_path):
    missing = tmp_path / "nowhere.csv"  # never read: the option is refused first
    for args, said in (
        (["train", "--temperature", "0.1"], "--temperature is an option of --task contrastive"),
        (
            ["pretrain", "--objective", "contrastive", "--whole-word-masking"],
            "--whole-word-masking is an option of --task mlm, rtd, not of --task contrastive",
        ),
    ):
        r = runner.invoke(app, [*args, "--data", str(missing), "--runs-dir", str(tmp_path)])
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
        assert said in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not any(tmp_path.iterdir())


def _api_defaults(**given):
    """The options `semalign.train` passes on when only ``given`` is typed."""
    import inspect

    from semalign.api.train import train

    options = {k: p.default for k, p in inspect.signature(train).parameters.items()}
    del options["reporter"]
    return {**options, **given}


@pytest.mark.parametrize("task", tasks.names())
def test_options_left_out_take_the_tasks_defaults(task):
    from semalign.workflows.options import OPTION_DEFAULTS, new_plan

    pairs = "pairs.csv" if "text_a" in tasks.get(task).columns else None  # not read here
    dataset = {"task": task, "data": pairs}
    want = {**OPTION_DEFAULTS, **dict(tasks.get(task).defaults)}
    plan = new_plan(_api_defaults(**dataset))
    assert plan["data"].max_len == want["max_len"]
    assert plan["model"]["bigram_buckets"] == want["bigram_buckets"]
    assert plan["model"]["dim"] == want["dim"] and plan["model"]["mlp_ratio"] == want["mlp_ratio"]
    assert plan["model"]["attention"]["heads"] == want["heads"]
    if hasattr(plan["data"], "truncation"):
        assert plan["data"].truncation == want["truncation"]
    # What the user types wins over the task's default.
    typed = new_plan(
        _api_defaults(**dataset, max_len=64, bigram_buckets=0, dim=48, heads=3, mlp_ratio=1)
    )
    assert typed["data"].max_len == 64 and typed["model"]["bigram_buckets"] == 0
    assert typed["model"]["dim"] == 48 and typed["model"]["mlp_ratio"] == 1
    assert typed["model"]["attention"]["heads"] == 3


def test_classification_defaults_are_the_measured_ones():
    assert dict(tasks.get("classification").defaults) == {
        "max_len": 256,
        "truncation": "head-tail",
        "bigram_buckets": 32768,
        "dim": 32,
        "heads": 2,
        "mlp_ratio": 0,
    }
