"""The attack suite: hostile files, links and arguments through the library, the CLI and the page.

Each case is refused with one sentence or accepted correctly: never a traceback, never a marker
file (code that ran), memory within the limit (the two cases that once took a 24 GB server down run
in a subprocess under a 6 GB address-space limit), and the session usable afterwards.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time

import hostile
import pytest
from apptest_helpers import ROOT, assert_clean, metric_values, new_app, shown_text

from ssd_core.checkpoints import read_model_config, read_state_dict
from ssd_core.errors import InputError
from ssd_core.indices import parse_indices
from unlearning_lab.uploads import load_image_zip

SIX_GB = 6 * 1024**3


def one_sentence(message: str) -> None:
    assert message and "\n" not in message and "Traceback" not in message, message
    assert message.rstrip().endswith((".", ")")), message


def refused(call, *args, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        call(*args, **kwargs)
    one_sentence(str(info.value))
    return str(info.value)


def run_limited(code: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Python ``code`` in a subprocess whose address space is capped at 6 GB."""
    prelude = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({SIX_GB}, {SIX_GB}))
        sys.path[:0] = [{str(ROOT / 'tests')!r}, {str(ROOT)!r}]
    """)
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


ACTIVE = (
    r"(?<!\\)\[(?:[^\]\\]|\\.)*(?<!\\)\]\(",  # a link [text](...)
    r"(?<!\\)!\[",  # an image ![...]
    r"(?<!\\)<[A-Za-z/!]",  # an HTML tag
    r"https?://", r"www\.[A-Za-z]", r"javascript:",  # an address the renderer would turn into a link
    r"(?<!\\)\$",  # LaTeX (\\href)
)


def escaped_everywhere(markdown: str) -> bool:
    """No Markdown or HTML construct in ``markdown`` would render as a link, an image, a tag or math."""
    return not any(re.search(pattern, markdown) for pattern in ACTIVE)


# ---------------------------------------------------------------------------------------------
# 1. Memory: the 10 KB zip that killed the server, and index ranges


def test_huge_images_zip_is_shrunk_while_decoding_and_trains_under_a_6_gb_limit():
    proc = run_limited("""
        import dataclasses, json, resource, hostile
        from unlearning_lab.uploads import load_image_zip
        from ssd_core.train import TrainConfig, train_model
        out = {}
        for n in (40, 340):
            data = hostile.solid_images_zip(n)
            result = load_image_zip(data, image_size=None, name="big")
            out[n] = [len(data), list(result.dataset.input_shape), len(result.dataset.train_y), result.warnings]
        small = load_image_zip(hostile.solid_images_zip(40), image_size=None, name="big").dataset
        # 4 epochs, not the default 15: the memory peak is one step's, and solid colours are learnt by then
        trained = train_model(small, dataclasses.replace(TrainConfig.default("big", "smallcnn"), epochs=4), device="cpu")
        out["test_acc"] = trained.test_acc
        out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(out))
    """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["40"][0] < 12_000 and out["340"][0] < 100_000  # 10.9 KB and 91 KB, as reported
    for n in ("40", "340"):
        assert out[n][1] == [3, 128, 128]  # stored at the side cap, never at 1448 px
        assert any("shrunk to 128x128" in w for w in out[n][3])
    assert out["test_acc"] == 1.0  # and it trains (solid colours are easy)
    assert out["peak_mb"] < 2500, out["peak_mb"]


def test_a_training_run_that_would_not_fit_is_refused_before_it_starts(monkeypatch):
    from ssd_core.data import load_dataset
    from ssd_core.train import TrainConfig, train_model

    monkeypatch.setenv("UNLEARNING_LAB_MEMORY_BUDGET_MB", "64")
    message = refused(train_model, load_dataset("shapes"), TrainConfig.default("shapes", "resnet18_narrow"), device="cpu")
    assert message.startswith("Training ResNet18 on 3x32x32 images would need about") and "64 MB" in message


def test_a_file_dataset_above_the_budget_is_refused_from_its_header(tmp_path, monkeypatch):
    import numpy as np

    from ssd_core.data.files import read_idx

    path = tmp_path / "train-images-idx3-ubyte"
    header = bytes([0, 0, 8, 3]) + np.array([60000, 28, 28], dtype=">u4").tobytes()
    path.write_bytes(header + bytes(16))  # declares 47 MB, holds 16 bytes: refused before reading
    monkeypatch.setenv("UNLEARNING_LAB_MEMORY_BUDGET_MB", "10")
    assert "would need about" in refused(read_idx, path)


def test_a_typed_index_range_is_refused_before_it_is_expanded():
    start = time.perf_counter()
    for text in ("0-999999999", "0-20000000", "5,0-99999,100001-200000"):
        assert "At most 100,000" in refused(parse_indices, text)
    assert time.perf_counter() - start < 0.05  # nothing was expanded
    proc = run_limited("""
        from ssd_core.cli import main
        raise SystemExit(main(["unlearn", "--quiet", "--forget-indices", "0-999999999"]))
    """)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: At most 100,000 sample indices can be listed at once."


def test_typed_index_ranges_in_the_sidebar_and_the_instances_box_give_one_sentence():
    at = new_app()
    at.run()
    at.radio(key="setup_forget_kind").set_value("indices").run()
    at.text_input(key="setup_forget_indices").input("0-999999999").run()
    assert not at.exception
    assert [shown_text(e.value) for e in at.error] == ["At most 100,000 sample indices can be listed at once."]
    at.text_input(key="setup_forget_indices").input("0-9").run()
    assert_clean(at)
    assert metric_values(at)["Dampened"] != "0"
    at.switch_page("app_pages/instances.py").run()
    at.text_input(key="inst_indices_text").input("0-999999999").run()
    assert not at.exception and not at.error
    assert [shown_text(w.value) for w in at.warning] == ["At most 1,437 sample indices can be listed at once."]
    at.text_input(key="inst_indices_text").input("3, 1400-1500").run()
    assert [shown_text(w.value) for w in at.warning] == [
        "64 of the indices are past the end of the training set (0 to 1436) and were left out."]


# ---------------------------------------------------------------------------------------------
# 2. Text stays text


def test_link_values_are_shown_as_text_never_as_links_or_images():
    at = new_app(dict(hostile.LINK_PAYLOADS))
    at.run()
    assert_clean(at)
    warnings = [w.value for w in at.warning]
    assert len(warnings) >= 8
    for message in warnings:
        assert escaped_everywhere(message), message
        assert "evil.example" not in message or "evil\\.example" in message  # no autolinked address either
    assert metric_values(at)["Dampened"] != "0"  # defaults everywhere, the page works
    assert dict(at.query_params)["dataset"] == "digits"  # the URL now says what is on screen


def test_names_from_an_upload_are_shown_as_text():
    from ui import uploads

    at = new_app()
    at.run()
    widget = next(w for w in at.get("file_uploader") if (w.key or "").startswith(uploads.K_ZIP_FILE))
    widget.set_value(("[Log in](http:evil.example).zip", hostile.markdown_names_zip(), "application/zip")).run()
    assert not at.exception
    # a checkpoint whose tensor names are Markdown, and a server folder path that is
    import torch

    state = {"![t](https://evil.example/p.png)": torch.zeros(2), "[x](https://evil.example)": torch.zeros(2)}
    checkpoint = next(w for w in at.get("file_uploader") if w.key == uploads.K_CKPT_FILE)
    checkpoint.set_value(("<b>w</b>.pt", hostile.torch_bytes(state), "application/octet-stream")).run()
    at.text_input(key=uploads.K_LOCAL_DIR).input("/tmp/[x](https://evil.example)\\..\\b").run()
    at.button(key=uploads.K_LOCAL_LOAD).click().run()
    assert not at.exception
    shown = [m.value for m in (*at.success, *at.warning, *at.error, *at.caption, *at.info)]
    assert sum("evil" in m for m in shown) >= 3
    for message in shown:
        if "evil" in message or "<img" in message or "<b>" in message:
            assert escaped_everywhere(message), message
    assert any("\\\\\\.\\.\\\\b" in m for m in shown)  # the backslashes of the path kept, escaped


# ---------------------------------------------------------------------------------------------
# 3. No traceback, ever


def test_checkpoints_that_used_to_raise_are_refused_with_one_sentence():
    cases = {
        "float8 safetensors": hostile.float8_safetensors(),
        "float8 torch.save": hostile.float8_pt(),
        "OrderedDict with shadowed items": hostile.shadowed_ordered_dict_pt(),
        "Parameter with shadowed detach": hostile.shadowed_parameter_pt(),
    }
    messages = {name: refused(read_state_dict, data) for name, data in cases.items()}
    assert "dtype float8_e4m3fn, which is not supported" in messages["float8 safetensors"]
    assert "dtype float8_e4m3fn, which is not supported" in messages["float8 torch.save"]  # not "can run code"
    assert "not hold a plain state dict" in messages["OrderedDict with shadowed items"]
    assert "_rebuild_parameter_with_state" in messages["Parameter with shadowed detach"]
    assert refused(read_model_config, hostile.huge_num_classes_config()).endswith(
        "not a number of about 401 digits.")


def test_every_pickle_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    payloads = hostile.pickle_payloads(marker)
    assert len(payloads) >= 70
    for name, data in payloads.items():
        refused(read_state_dict, data)
        assert not marker.exists(), name


def test_a_fuzzed_tiff_is_skipped_by_name():
    result = load_image_zip(hostile.fuzzed_tiff_zip(), image_size=None, name="t")
    assert result.skipped == ["t/a/fuzzed.tiff"]
    assert len(result.dataset.train_y) + len(result.dataset.test_y) == 8


def test_a_server_folder_path_that_is_too_long_gives_one_sentence(tmp_path, monkeypatch):
    from unlearning_lab.uploads import check_local_data_dir

    monkeypatch.setenv("UNLEARNING_LAB_DATA_ROOTS", str(tmp_path))
    assert "File name too long" in refused(check_local_data_dir, str(tmp_path / ("a" * 300)))
    assert "longer than 4,096" in refused(check_local_data_dir, "/" + "b" * 5000)


@pytest.mark.parametrize("name", sorted(hostile.CLI_ATTACKS))
def test_the_cli_answers_hostile_arguments_with_one_sentence_and_status_2(capsys, name, tmp_path):
    from ssd_core.cli import main

    start = time.perf_counter()
    code = main(["unlearn", "--quiet", *hostile.CLI_ATTACKS[name]])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert time.perf_counter() - start < 10  # refused before the run (save-model: not after it)


def test_batch_sizes_workers_and_grids_past_their_caps_are_refused_before_anything_runs(capsys):
    """#23: every count a user controls has a documented cap checked from the number alone."""
    import torch

    from ssd_core.cli import main
    from ssd_core.data import ForgetRequest, load_dataset, make_split
    from ssd_core.data.streaming import stream
    from ssd_core.importance import compute_importance
    from ssd_core.memory import MAX_BATCH_SIZE, MAX_WORKERS
    from ssd_core.models import build_for_dataset
    from ssd_core.sweep import MAX_GRID_POINTS, sweep

    dataset = load_dataset("digits")
    model = build_for_dataset("smallcnn", dataset)
    start = time.perf_counter()
    assert f"from 1 to {MAX_BATCH_SIZE:,}; got 100,000,000" in refused(compute_importance, model, dataset.train(),
                                                                        batch_size=100_000_000)
    assert f"from 0 to {MAX_WORKERS}; got 100,000" in refused(stream, dataset.train(), 64, 100_000)
    assert "got 0" in refused(stream, dataset.train(), 0, 0)
    split = make_split(dataset, ForgetRequest("class", target=3))
    zeros = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    message = refused(sweep, model, zeros, zeros, split, [1.0] * 1000, [1.0] * 1000)
    assert f"1,000,000 settings; at most {MAX_GRID_POINTS:,}" in message
    assert time.perf_counter() - start < 5  # from the numbers alone
    for flag, value, words in (("--workers", "100000", "(--workers) must be from 0 to"),
                               ("--batch-size", "0", "batch size must be from 1 to")):  # the importance command too
        assert main(["importance", "--quiet", flag, value]) == 2
        assert words in capsys.readouterr().err


def test_an_importance_pass_that_would_not_fit_is_refused_from_the_batch_size(monkeypatch):
    from ssd_core.data import load_dataset
    from ssd_core.importance import compute_importance
    from ssd_core.models import build_for_dataset

    monkeypatch.setenv("UNLEARNING_LAB_MEMORY_BUDGET_MB", "20")
    dataset = load_dataset("shapes")
    message = refused(compute_importance, build_for_dataset("resnet18_narrow", dataset), dataset.train(), batch_size=4096)
    assert message.startswith("Computing importance on 3x32x32 images would need about") and "smaller batch size" in message


@pytest.mark.parametrize("params", [hostile.BAD_NUMBERS, hostile.RANDOM_BAD_NUMBER])
def test_non_ascii_digits_in_a_link_give_one_sentence_each(params):
    at = new_app(dict(params))
    at.run()
    assert_clean(at)
    warnings = [shown_text(w.value) for w in at.warning]
    assert len(warnings) == len(params)
    for message in warnings:
        one_sentence(message)
        assert "must be" in message


@pytest.mark.parametrize("name", sorted(hostile.LINK_ATTACKS))
def test_hostile_link_values_give_one_sentence_and_the_default_screen(name):
    at = new_app(hostile.LINK_ATTACKS[name])
    at.run()
    assert_clean(at)
    warnings = [shown_text(w.value) for w in at.warning]
    assert len(warnings) == 1, warnings
    one_sentence(warnings[0])
    fresh = new_app()
    fresh.run()
    assert metric_values(at) == metric_values(fresh)  # the default setup's numbers, nothing half-applied


def _smallcnn_weights() -> bytes:
    from ssd_core.checkpoints import model_bytes
    from ssd_core.data import load_dataset
    from ssd_core.models import build_for_dataset

    return model_bytes(build_for_dataset("smallcnn", load_dataset("digits"), seed=0))


@pytest.mark.parametrize("name", sorted(hostile.CHECKPOINT_ATTACKS))
def test_hostile_checkpoints_through_the_page_and_the_cli_give_one_sentence(name, tmp_path, capsys):
    from ssd_core.cli import main
    from ui import uploads

    make_weights, make_config = hostile.CHECKPOINT_ATTACKS[name]
    weights = make_weights() if make_weights else _smallcnn_weights()
    config = make_config() if make_config else None
    at = new_app()
    at.run()
    before = metric_values(at)
    if config is not None:
        at.file_uploader(key=uploads.K_CKPT_CONFIG).set_value(("config.json", config, "application/json"))
    at.file_uploader(key=uploads.K_CKPT_FILE).set_value(("weights.pt", weights, "application/octet-stream")).run()
    assert not at.exception
    errors = [shown_text(e.value) for e in at.error]
    assert len(errors) == 1, errors
    one_sentence(errors[0])
    assert metric_values(at) == before and not at.selectbox(key="setup_model").value.startswith("upload:")

    (tmp_path / "weights.pt").write_bytes(weights)
    (tmp_path / "config.json").write_bytes(config or json.dumps(
        {"model": "smallcnn", "num_classes": 10, "input_shape": [1, 8, 8], "mean": [0.5], "std": [0.5]}).encode())
    code = main(["unlearn", "--quiet", "--dataset", "digits", "--forget-class", "3", "--checkpoint",
                 str(tmp_path / "weights.pt"), "--checkpoint-config", str(tmp_path / "config.json")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_server_folder_path_that_is_too_long_through_the_page(tmp_path, monkeypatch):
    from ui import uploads

    monkeypatch.setenv("UNLEARNING_LAB_DATA_ROOTS", str(tmp_path))
    at = new_app()
    at.run()
    before = metric_values(at)
    at.text_input(key=uploads.K_LOCAL_DIR).input(str(tmp_path / ("a" * 300))).run()
    at.button(key=uploads.K_LOCAL_LOAD).click().run()
    assert not at.exception
    errors = [shown_text(e.value) for e in at.error]
    assert len(errors) == 1 and "File name too long" in errors[0], errors
    one_sentence(errors[0])
    assert metric_values(at) == before


def test_the_train_command_checks_its_output_folder_before_training(capsys):
    from ssd_core.cli import main

    start = time.perf_counter()
    assert main(["train", "--dataset", "shapes", "--model", "smallcnn", "--out", "/nonexistent/x"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert time.perf_counter() - start < 5  # refused before a minute of training, not after it


def test_class_names_from_an_upload_stay_text_on_the_instances_page():
    from apptest_helpers import click_nav

    at = new_app()
    at.run()
    _upload_zip(at, "names.zip", hostile.markdown_names_zip())
    click_nav(at, "instances")
    train = [b for b in at.main.button if b.label.startswith("Train")]
    train[0].click().run()  # an uploaded dataset's model is trained on request (about 5 s here)
    assert_clean(at)
    captions = [image.caption for element in _elements(at, "image") for image in element.proto.imgs]
    assert len(captions) == 12 and any("evil" in c for c in captions)
    for caption in captions:
        assert escaped_everywhere(caption), caption


def _elements(at, kind: str) -> list:
    """Every element of one kind in the page's tree (AppTest has no accessor for images)."""
    found, stack = [], [at._tree]
    while stack:
        node = stack.pop()
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            stack.extend(children.values())
        if getattr(node, "type", None) == kind:
            found.append(node)
    return found


# ---------------------------------------------------------------------------------------------
# 4. Uploads through the page: one sentence, the session usable, the bytes not kept in memory


def _upload_zip(at, name: str, data: bytes):
    from ui import uploads

    widget = next(w for w in at.get("file_uploader") if (w.key or "").startswith(uploads.K_ZIP_FILE))
    widget.set_value((name, data, "application/zip"))
    return at.run()


def test_hostile_zips_through_the_page_give_one_sentence_and_the_page_stays_usable():
    from ui import uploads

    at = new_app()
    at.run()
    default = metric_values(at)
    cases = {
        "rect_only.zip": "The images are 40x20 pixels, but the models here need square images; pick an image size "
                         "to resize them to.",
        "zeros.zip": "The zip is refused as a possible zip bomb",
        "fuzzed.zip": None,  # accepted, the fuzzed file skipped by name
    }
    data = {"rect_only.zip": hostile.rectangles_zip(), "zeros.zip": hostile.zero_files_zip(),
            "fuzzed.zip": hostile.fuzzed_tiff_zip()}
    for name, expected in cases.items():
        start = time.perf_counter()
        _upload_zip(at, name, data[name])
        assert not at.exception, name
        errors = [shown_text(e.value) for e in at.error]
        if expected is None:
            assert errors == [] and any("fuzzed.tiff" in shown_text(w.value) for w in at.warning)
            assert any(shown_text(s.value).startswith("Loaded fuzzed.zip") for s in at.success)
        else:
            assert len(errors) == 1 and errors[0].startswith(expected), (name, errors)
            assert not at.success, name  # never a success and an error at once
        assert time.perf_counter() - start < 20, name
        # the uploader is empty again: Streamlit no longer holds the zip, the session keeps it on disk
        assert all(not w.value for w in at.get("file_uploader") if (w.key or "").startswith(uploads.K_ZIP_FILE))
    current = at.session_state[uploads.K_ZIP_CURRENT]
    assert (current[2].path / "upload.zip").is_file()
    upload = next(iter(at.session_state[uploads.K_DATASETS].values()))
    assert upload.folder is not None and (upload.folder.path / "train_x.npy").is_file()
    at.selectbox(key="setup_dataset").set_value("digits").run()
    at.selectbox(key="setup_forget_class").set_value(3).run()  # the 3-class upload had moved it to class 2
    assert_clean(at)
    assert metric_values(at) == default


def test_the_huge_images_zip_through_the_page_under_a_6_gb_limit():
    proc = run_limited("""
        import hostile
        from apptest_helpers import new_app, shown_text, metric_values
        from ui import uploads
        at = new_app()
        at.run()
        widget = next(w for w in at.get("file_uploader") if (w.key or "").startswith(uploads.K_ZIP_FILE))
        widget.set_value(("big.zip", hostile.solid_images_zip(40), "application/zip")).run()
        assert not at.exception, [e.message for e in at.exception]
        assert any("shrunk to 128x128" in shown_text(w.value) for w in at.warning)
        at.button(key="train_confirm").click().run()
        assert not at.exception and not at.error, [shown_text(e.value) for e in at.error]
        print("OK", metric_values(at)["Dampened"])
    """, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1].startswith("OK")
