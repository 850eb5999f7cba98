"""CLI: the documented JSON, determinism, and one-sentence errors for bad arguments."""

import json
import subprocess
import sys

import pytest

from ssd_core.cli import main

ACC_KEYS = {"retain_test_acc", "forget_test_acc", "retain_train_acc", "forget_train_acc", "test_acc", "mia", "per_class_acc"}


def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def strip_seconds(result):
    result = dict(result)
    result.pop("seconds")
    result.pop("environment")
    result.pop("model_source")  # shipped, cache or trained: where the same weights came from
    result["diagnostics"] = {k: v for k, v in result["diagnostics"].items() if k != "full_importance_cached"}
    for side in ("before", "after"):
        result[side] = {k: v for k, v in result[side].items() if k != "seconds"}
    return result


def test_unlearn_json_schema_and_determinism(capsys, tmp_path):
    out_file = tmp_path / "out.json"
    args = ["unlearn", "--dataset", "digits", "--model", "smallcnn", "--forget-class", "3", "--method", "ssd",
            "--alpha", "10", "--lam", "1", "--seed", "0", "--json", str(out_file), "--quiet"]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    result = json.loads(out_file.read_text())
    # stdout has a short summary for a person, the file the full result
    assert out.splitlines()[0] == "digits / smallcnn: ssd forgetting class 3 (alpha 10, lambda 1) in " + \
        f"{result['seconds']['total']:.1f} s"
    assert f"forget (test)      97.3%{100 * result['after']['forget_test_acc']:8.1f}%" in out
    assert f"dampened {result['diagnostics']['report']['total_selected']:,} of" in out
    assert out.strip().endswith(f"Full result (JSON): {out_file}")
    assert {"dataset", "model", "method", "params", "forget", "seconds", "before", "after"} <= set(result)
    assert result["params"]["alpha"] == 10 and result["params"]["lam"] == 1
    assert result["forget"]["kind"] == "class" and result["forget"]["target"] == 3
    for side in ("before", "after"):
        assert ACC_KEYS <= set(result[side])
        for key in ACC_KEYS - {"per_class_acc"}:
            assert 0.0 <= result[side][key] <= 1.0
        assert len(result[side]["per_class_acc"]) == 10
    assert result["after"]["forget_test_acc"] < result["before"]["forget_test_acc"]
    assert {"importance_full", "importance_forget", "dampening", "evaluation", "total"} <= set(result["seconds"])
    code, out2, _ = run_cli(capsys, *[a if a != str(out_file) else "-" for a in args])  # --json -: JSON on stdout
    assert strip_seconds(json.loads(out2)) == strip_seconds(result)


@pytest.mark.parametrize(
    "args",
    [
        ["--forget-random", "5", "--method", "lfssd", "--alpha", "5"],
        ["--forget-class", "1", "--dataset", "shapes", "--alpha", "50"],  # the dataset brings its model
        ["--forget-indices", "0,1,2,10-12"],
        ["--forget-class", "7", "--device", "cpu", "--param", "estimator=fisher_exact"],
    ],
)
def test_other_requests(capsys, args):
    code, out, err = run_cli(capsys, "unlearn", "--quiet", "--json", "-", *args)
    assert code == 0, err
    result = json.loads(out)
    if "--forget-indices" in args:
        assert result["forget"]["n_forget_train"] == 6 and result["after"]["forget_test_acc"] is None
    if "shapes" in args:
        assert result["model"] == "resnet18_narrow" and result["model_source"] == "shipped"


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "Say what to forget"),
        (["--dataset", "imagenet"], "Unknown dataset"),
        (["--forget-class", "10"], "out of range"),
        (["--alpha", "0"], "alpha must be a positive number"),
        (["--alpha", "-3"], "alpha must be a positive number"),
        (["--lam", "-1"], "lambda must be zero or positive"),
        (["--forget-indices", ""], "empty"),
        (["--forget-random", "100000"], "Cannot forget"),
        (["--forget-indices", "0-1436"], "every training sample"),
        (["--method", "magic"], "Unknown method"),
        (["--model", "alexnet"], "Unknown model"),
        (["--alpha", "abc"], "is not a finite number"),
        (["--forget-subclass", "rocket"], "no sub-classes"),
    ],
)
def test_bad_arguments_exit_2_with_one_sentence(capsys, args, message):
    code, out, err = run_cli(capsys, "unlearn", "--quiet", *(args if args == [] or any(a.startswith("--forget") for a in args)
                                                              else ["--forget-class", "0", *args]))
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_subprocess_error_has_no_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "ssd_core", "unlearn", "--forget-class", "42", "--quiet"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: Class 42 is out of range: digits has classes 0 to 9."


def test_list(capsys):
    code, out, _ = run_cli(capsys, "list")
    listed = json.loads(out)
    assert code == 0 and "digits" in listed["datasets"] and "ssd" in listed["methods"] and "smallcnn" in listed["models"]
