"""Bring your own model and data: uploads in AppTest sessions (and one real browser upload).

Every refused file must show one sentence, raise nothing, and leave the model, dataset and
results in use before untouched; uploads stay in their own session.
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from apptest_helpers import assert_clean, shown_text
from apptest_helpers import new_app as app_at_link
from hostile import png, zip_of
from streamlit.testing.v1 import AppTest

from ssd_core.checkpoints import config_for_dataset, load_model, model_bytes, read_model_config, save_model
from ssd_core.dampening import dampen
from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.errors import InputError
from ssd_core.memory import memory_budget
from ssd_core.methods.ssd import ssd_importances
from ssd_core.metrics import evaluate
from ssd_core.models import build_model
from ssd_core.train import load_or_train
from unlearning_lab.uploads import load_image_zip

TIMEOUT = 120
CKPT, CKPT_CONFIG, ZIP = "upload_checkpoint", "upload_checkpoint_config", "upload_dataset_zip"


def new_app() -> AppTest:
    """A session forgetting class 0 with alpha 10 by hand (the exported model below forgot class 3)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"forget": "class:0", "alpha": "10"})
    return at


def metric_values(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def pct(text: str) -> float:
    return float(text.rstrip("%")) / 100


def per_class_before(at: AppTest) -> list[float]:

    for element in at.get("plotly_chart"):
        spec = json.loads(element.proto.spec)
        if spec["layout"]["title"]["text"].startswith("Per-class test accuracy"):
            trace = next(t for t in spec["data"] if t["name"] == "before")
            return _values(trace["y"])
    raise AssertionError("no per-class accuracy chart")


def _values(data) -> list:
    if isinstance(data, dict) and "bdata" in data:
        import base64

        import numpy as np

        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"])).tolist()
    return list(data)


def errors(at: AppTest) -> list[str]:
    return [shown_text(e.value) for e in at.error]


def upload(at: AppTest, key: str, name: str, data: bytes) -> AppTest:
    """Upload a file with the uploader whose key is (or starts with, for the zip's) ``key``."""
    widget = next(w for w in at.get("file_uploader") if w.key == key or (w.key or "").startswith(f"{key}_"))
    widget.set_value((name, data, "application/octet-stream"))
    return at.run()


@pytest.fixture(scope="module")
def digits():
    dataset = load_dataset("digits")
    original = load_or_train(dataset, "smallcnn", seed=0, device="cpu").model
    return dataset, original


@pytest.fixture(scope="module")
def exported(digits, tmp_path_factory):
    """An SSD-unlearned digits model (forget 3, alpha 20) written by save_model, and its own metrics."""
    dataset, original = digits
    split3 = make_split(dataset, ForgetRequest("class", 3))
    imp = ssd_importances(original, split3, "fisher", 64, device="cpu")
    model, _ = dampen(original, imp.full, imp.forget, 20.0, 1.0)
    stem = tmp_path_factory.mktemp("export") / "digits-smallcnn-forget3"
    weights, meta = save_model(model, config_for_dataset("smallcnn", dataset), stem, {"unlearning": {"alpha": 20.0}})
    split0 = make_split(dataset, ForgetRequest("class", 0))  # what the page forgets next (its default)
    return weights.read_bytes(), meta.read_bytes(), evaluate(model, split0)


_png = png
_zip = zip_of


def _shapes_zip(n: int = 12) -> bytes:
    """Three classes of 8x8 images (colour plus a little noise), and one unreadable file."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    entries = {}
    for name, colour in (("red", (220, 30, 30)), ("green", (30, 200, 30)), ("blue", (30, 30, 220))):
        for i in range(n):
            pixels = np.clip(np.array(colour) + rng.normal(0, 20, (8, 8, 3)), 0, 255).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(pixels).save(buf, "PNG")
            entries[f"colours/{name}/{i}.png"] = buf.getvalue()
    entries["colours/blue/broken.png"] = b"not a png"
    return _zip(entries)


def _library_message(call) -> str:
    with pytest.raises(InputError) as info:
        call()
    return str(info.value)


# ---------------------------------------------------------------------------------------------
# Checkpoints


def test_exported_checkpoint_upload_reproduces_the_exporters_metrics(exported):
    weights, meta, expected = exported
    at = new_app()
    at.run()
    at.file_uploader(key=CKPT_CONFIG).set_value(("digits-smallcnn-forget3.json", meta, "application/json"))
    upload(at, CKPT, "digits-smallcnn-forget3.safetensors", weights)
    assert not at.exception and errors(at) == []
    assert [shown_text(s.value) for s in at.success] == [
        "Loaded digits-smallcnn-forget3.safetensors as smallcnn (10 classes); it is now the model in use."]
    model_choice = at.selectbox(key="setup_model").value
    assert model_choice.startswith("upload:")
    assert at.selectbox(key="setup_model").options[-1] == \
        "your smallcnn — digits-smallcnn-forget3.safetensors (10 classes, 1×8×8)"

    # the page evaluates the uploaded model: the exporter's numbers, per class and overall
    assert per_class_before(at) == pytest.approx([100 * v for v in expected.per_class_acc])
    caption = next(c.value for c in at.caption if "test accuracy" in c.value)
    assert f"(uploaded checkpoint, test accuracy {100 * expected.test_acc:.1f}%" in caption
    help_texts = {m.label: m.proto.help for m in at.metric}
    assert help_texts["Forget (test)"].endswith(f"Before: {100 * expected.forget_test_acc:.1f}%.")
    assert help_texts["Retain (test)"].endswith(f"Before: {100 * expected.retain_test_acc:.1f}%.")

    # and SSD on it is SSD on that model: same selection count as ssd_core computes directly
    config = read_model_config(meta)
    model = load_model(weights, config)
    split = make_split(load_dataset("digits"), ForgetRequest("class", 0))
    imp = ssd_importances(model, split, "fisher", 64, device="cpu")
    _, report = dampen(model, imp.full, imp.forget, 10.0, 1.0)
    assert int(metric_values(at)["Dampened"].replace(",", "")) == report.total_selected

    # uploads are never put in a link
    assert "model" not in at.query_params and at.query_params["dataset"] == "digits"


class Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def test_refused_checkpoints_show_one_sentence_and_keep_the_previous_model(digits, tmp_path):
    dataset, _ = digits
    marker = tmp_path / "pwned"
    evil = io.BytesIO()
    torch.save({"weight": torch.zeros(2), "payload": Evil(marker)}, evil)
    vit = build_model("vit_tiny", 10, (1, 8, 8), dataset.mean, dataset.std, seed=0)
    shapes_cnn = build_model("smallcnn", 8, (1, 8, 8), dataset.mean, dataset.std, seed=0)
    config = config_for_dataset("smallcnn", dataset)
    cases = {
        "empty.safetensors": (b"", "The checkpoint file is empty."),
        "corrupt.pt": (b"\x00\x01garbage" * 50, _library_message(lambda: load_model(b"\x00\x01garbage" * 50, config))),
        "evil.pt": (evil.getvalue(), _library_message(lambda: load_model(evil.getvalue(), config))),
        "vit.safetensors": (model_bytes(vit), "The checkpoint does not match smallcnn: it looks like a vit_tiny "
                                              "checkpoint; pick the architecture it was trained with."),
        "eight_classes.safetensors": (model_bytes(shapes_cnn),
                                      "The checkpoint was trained for 8 classes but 10 were chosen ('net.classifier.3.weight' "
                                      "has shape [8, 128], expected [10, 128]); pick the matching dataset or number of classes."),
    }
    assert "unpickling objects can run code" in cases["evil.pt"][1]

    at = new_app()
    at.run()
    at.selectbox(key="setup_forget_class").set_value(2).run()
    before = metric_values(at)
    for name, (data, message) in cases.items():
        upload(at, CKPT, name, data)
        assert not at.exception, name
        assert errors(at) == [message], name
        assert at.selectbox(key="setup_model").value == "smallcnn", name  # the previous model stays in use
        assert metric_values(at) == before, name  # and so do its results
        assert not any(o.startswith("your ") for o in at.selectbox(key="setup_model").options), name
    assert not marker.exists()  # the pickle payload never ran

    # the session is still usable: clear the bad file, move a slider
    at.file_uploader(key=CKPT).clear().run()
    at.select_slider(key="alpha").set_value(30.0).run()
    assert not at.exception and errors(at) == []
    assert metric_values(at) != before


def test_bad_requests_and_a_missing_gpu_get_one_sentence_and_the_page_stays_usable():
    at = new_app()
    at.run()
    at.radio(key="setup_forget_kind").set_value("indices").run()
    at.text_input(key="setup_forget_indices").input("").run()
    assert not at.exception and errors(at) == ["Type at least one training-set index, e.g. 0, 5, 17-20."]
    at.text_input(key="setup_forget_indices").input("0-1436").run()  # every digits training image
    assert not at.exception and errors(at) == ["The request covers every training sample; nothing would remain."]
    at.text_input(key="setup_forget_indices").input("0-9").run()
    assert not at.exception and errors(at) == [] and at.metric

    if not torch.cuda.is_available():
        at.radio(key="setup_device").set_value("gpu").run()
        assert not at.exception
        assert errors(at) == ["CUDA was requested but there is no CUDA GPU on this machine; use --device cpu or auto. "
                              "Showing CPU results instead."]
        assert any("device cpu" in c.value for c in at.caption) and at.metric  # results, on the CPU


# ---------------------------------------------------------------------------------------------
# Datasets


def test_dataset_zip_upload_trains_on_it_and_refuses_bombs_one_class_and_mixed_sizes():
    at = new_app()
    at.run()
    default_metrics = metric_values(at)
    data = _shapes_zip()
    upload(at, ZIP, "colours.zip", data)
    assert not at.exception and errors(at) == []
    assert [shown_text(w.value) for w in at.warning] == ["Skipped 1 unreadable image(s): colours/blue/broken.png."]
    expected = load_image_zip(data, image_size=None, test_fraction=0.2, seed=0, name="colours").dataset
    assert [shown_text(s.value) for s in at.success] == [
        f"Loaded colours.zip: 3 classes, {len(expected.train_y)} training and {len(expected.test_y)} test images; "
        "it is now the dataset in use."]
    choice = at.selectbox(key="setup_dataset").value
    assert choice == f"upload:{expected.fingerprint()}"
    assert at.selectbox(key="setup_forget_class").options == ["0: blue", "1: green", "2: red"]
    # training a model on the upload starts only when the user confirms it, with the expected time shown
    assert not at.metric and any("Training it here takes about" in i.value for i in at.info)
    at.button(key="train_confirm").click().run()
    assert not at.exception and errors(at) == []
    caption = next(c.value for c in at.caption if "test accuracy" in c.value)
    assert caption.startswith("**smallcnn** on **colours** (trained just now, test accuracy ")
    assert pct(metric_values(at)["Retain (test)"]) > 0.9  # colours are easy to tell apart
    uploaded_metrics = metric_values(at)
    # #23: a second session cannot reach this upload, not even by naming it in a link
    other = app_at_link({"dataset": choice, "forget": "class:0"}).run()
    assert_clean(other)
    assert other.selectbox(key="setup_dataset").value == "digits" and choice not in other.selectbox(key="setup_dataset").options
    assert any(choice in shown_text(w.value) for w in other.warning)

    bomb = {f"colours/{c}/{i}.png": _png(v) for c, v in (("a", (0, 0, 0)), ("b", (9, 9, 9))) for i in range(3)}
    bomb["colours/a/bomb.bmp"] = bytes(50 * 1024 * 1024)
    one_class = _zip({f"red/{i}.png": _png((255, 0, 0)) for i in range(4)})
    mixed = _zip({"a/0.png": _png((0, 0, 0)), "a/1.png": _png((0, 0, 0), (16, 16)),
                  "b/0.png": _png((9, 9, 9)), "b/1.png": _png((9, 9, 9))})
    cases = {
        "bomb.zip": (_zip(bomb), None),
        "one_class.zip": (one_class, "A dataset needs at least two classes (one folder of images per class), but the zip has 1 (red)."),
        "empty.zip": (b"", "The upload is empty."),
        "mixed.zip": (mixed, "The images have different sizes (a/0.png is 8x8, a/1.png is 16x16); pick an image size to resize to."),
    }
    for name, (data, message) in cases.items():
        upload(at, ZIP, name, data)
        assert not at.exception, name
        (shown,) = errors(at)
        if message is None:
            assert shown.startswith("The zip is refused as a possible zip bomb: 'colours/a/bomb.bmp' expands ")
        else:
            assert shown == message, name
        assert at.selectbox(key="setup_dataset").value == choice, name  # the previous upload stays in use
        assert metric_values(at) == uploaded_metrics, name

    # resizing fixes mixed sizes; then back to a built-in dataset with the previous numbers
    at.selectbox(key="upload_dataset_image_size").set_value(8).run()
    assert not at.exception and errors(at) == [] and not at.metric  # a new dataset: train again?
    assert at.selectbox(key="setup_dataset").value != choice  # the resized upload is a new dataset in use
    at.selectbox(key="setup_dataset").set_value("digits").run()
    assert not at.exception and errors(at) == [] and metric_values(at) == default_metrics


def test_a_server_folder_is_read_only_under_the_allowed_roots(tmp_path, monkeypatch):
    from PIL import Image

    from ui import uploads

    allowed = tmp_path / "data"
    folder = allowed / "pets"
    for name, colour in (("cat", (200, 100, 0)), ("dog", (0, 100, 200))):
        (folder / name).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (8, 8), colour).save(folder / name / f"{i}.png")
    monkeypatch.setenv("UNLEARNING_LAB_DATA_ROOTS", str(allowed))

    at = new_app()
    at.run()
    before = metric_values(at)
    at.text_input(key="local_dataset_dir").input("/etc").run()
    at.button(key="local_dataset_load").click().run()
    assert not at.exception
    assert errors(at) == [f"Reading data from '/etc' is not allowed on this server; use a folder under: {allowed.resolve()}."]
    at.text_input(key="local_dataset_dir").input(str(allowed / ".." / ".." / "etc")).run()
    at.button(key="local_dataset_load").click().run()
    assert errors(at)[0].startswith(f"Reading data from '{allowed / '..' / '..' / 'etc'}' is not allowed on this server")
    at.text_input(key="local_dataset_dir").input(str(allowed / "missing")).run()
    at.button(key="local_dataset_load").click().run()
    assert errors(at) == [f"The folder '{(allowed / 'missing').resolve()}' does not exist on this server."]
    assert at.selectbox(key="setup_dataset").value == "digits" and metric_values(at) == before

    # an allowed folder loads (the handler the button calls; training on it is the zip test's job)
    state: dict = {}
    local = uploads.add_local_dataset(state, "imagefolder", str(folder), lambda name, path: load_dataset(name, path))
    assert local.id == f"local:imagefolder:{folder.resolve()}" and local.path == str(folder.resolve())
    assert list(uploads.local_datasets(state)) == [local.id]
    assert load_dataset("imagefolder", local.path).classes == ["cat", "dog"]


# ---------------------------------------------------------------------------------------------
# Many users


def test_heavy_jobs_queue_with_their_place_and_identical_builds_run_once():
    import threading

    from ui import resources
    from unlearning_lab import jobs

    gate = jobs.default_gate()
    release = threading.Event()
    holding = threading.Barrier(gate.max_concurrent + 1)

    def hold() -> None:
        with gate.slot():
            holding.wait()
            release.wait(30)

    holders = [threading.Thread(target=hold) for _ in range(gate.max_concurrent)]
    for t in holders:
        t.start()
    holding.wait()  # every slot is taken
    messages: list[str] = []
    entered = threading.Event()

    def queued_job() -> None:
        with resources.heavy_slot(lambda fraction, message: messages.append(message)):
            entered.set()

    waiter = threading.Thread(target=queued_job)
    waiter.start()
    deadline = time.monotonic() + 10
    while not messages and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not entered.is_set()
    assert messages == [f"Queued: 0 ahead of you (the server runs {gate.max_concurrent} heavy jobs at a time; "
                        "this starts by itself)"]
    release.set()
    waiter.join(10)
    for t in holders:
        t.join(10)
    assert entered.is_set() and gate.active == 0

    # identical requests from two sessions: one build, the other is told and shares the result
    from unlearning_lab.store import ResultStore

    store = ResultStore()
    started, finish, builds, shared = threading.Event(), threading.Event(), [], []

    def build():
        builds.append(1)
        started.set()
        finish.wait(10)
        return object()

    results: list = []
    first = threading.Thread(target=lambda: results.append(store.get("prepared", "k", build)))
    first.start()
    started.wait(10)
    second = threading.Thread(target=lambda: results.append(store.get("prepared", "k", build, on_shared=lambda: shared.append(1))))
    second.start()
    time.sleep(0.2)
    finish.set()
    first.join(10)
    second.join(10)
    assert builds == [1] and shared == [1] and results[0] is results[1]


def test_two_sessions_with_different_uploads_never_see_each_other(exported, digits):
    from ui import resources
    from ui import store as ui_store

    dataset, original = digits
    weights, meta, _ = exported
    first, second = new_app(), new_app()
    first.run()
    second.run()
    upload(first, CKPT, "unlearned.safetensors", weights)
    other = model_bytes(original)  # the same architecture, other weights
    upload(second, CKPT, "original.safetensors", other)
    second.selectbox(key="setup_forget_class").set_value(5).run()
    second.select_slider(key="alpha").set_value(30.0).run()
    first.select_slider(key="alpha").set_value(20.0).run()
    for at in (first, second):
        assert not at.exception and errors(at) == []

    # each session offers only its own upload
    assert [o for o in first.selectbox(key="setup_model").options if o.startswith("your ")] == [
        "your smallcnn — unlearned.safetensors (10 classes, 1×8×8)"]
    assert [o for o in second.selectbox(key="setup_model").options if o.startswith("your ")] == [
        "your smallcnn — original.safetensors (10 classes, 1×8×8)"]
    first_id, second_id = first.selectbox(key="setup_model").value, second.selectbox(key="setup_model").value
    assert first_id.startswith("upload:") and second_id.startswith("upload:") and first_id != second_id
    # each session keeps its upload run in its own store (resources.store_for), with its own prepared run
    first_store = first.session_state[ui_store.K_SESSION_STORE][1]
    second_store = second.session_state[ui_store.K_SESSION_STORE][1]
    assert first_store is not second_store and first_store is not resources.resource_store()
    first_prepared, = first_store._items["prepared"].values()
    second_prepared, = second_store._items["prepared"].values()
    assert first_prepared is not second_prepared and "live" in first_store._items and "live" in second_store._items
    # nothing of either upload is in the process-wide store, in any namespace keyed by the setup ("original_outputs"
    # is keyed by the weights' content: original.safetensors is the shipped model, whose outputs a shared run has)
    store = resources.resource_store()
    fingerprints = {first_id.split(":", 1)[1], second_id.split(":", 1)[1]}
    for namespace, items in store._items.items():
        for key in items if namespace != "original_outputs" else ():
            parts = key if isinstance(key, tuple) else (key,)
            assert not any(f in str(part) for f in fingerprints for part in parts), (namespace, key)
    # nor on the disk: the unlearned upload's logits stay out of ssd_core.original_outputs' cache
    from ssd_core.train import cache_dir

    stored = [p.name for p in (cache_dir() / "outputs").glob("*.safetensors")]
    assert stored and not any(name.startswith(first_prepared.original.fingerprint) for name in stored), stored

    # a third session naming either upload in a link gets neither (#23)
    for upload_id in (first_id, second_id):
        third = app_at_link({"model": upload_id, "forget": "class:0"}).run()
        assert_clean(third)
        assert third.selectbox(key="setup_model").value == "smallcnn"
        assert not [o for o in third.selectbox(key="setup_model").options if o.startswith("your ")]
        assert any(upload_id in shown_text(w.value) for w in third.warning)

    shown_first, shown_second = metric_values(first), metric_values(second)
    first.run()
    second.run()
    assert metric_values(first) == shown_first and metric_values(second) == shown_second
    assert shown_first != shown_second
    assert per_class_before(first) != per_class_before(second)  # each page evaluates its own upload


# ---------------------------------------------------------------------------------------------
# A real browser upload (the HTTP upload path and server.maxUploadSize)


@pytest.mark.browser
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="/usr/bin/chromium is not installed")
def test_browser_upload_of_an_exported_checkpoint(exported, tmp_path):
    import importlib.util

    from playwright.sync_api import sync_playwright

    spec = importlib.util.spec_from_file_location("bench_browser", ROOT / "bench" / "bench_browser.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    weights, meta, _ = exported
    path = tmp_path / "mine.safetensors"
    path.write_bytes(weights)
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"\x00garbage" * 10)
    hostile_hf = _hugging_face_folder(tmp_path / "hf", num_labels=1_000_000_000)  # #23.1: grew a server by 2.6 GB
    with bench.serve() as (url, server), sync_playwright() as playwright:
        browser = bench.launch_browser(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            bench.wait_for_first_screen(page, timeout_ms=120_000)
            page.get_by_text("Your own model").click()
            uploader = page.locator('[data-testid="stFileUploader"]', has_text="Checkpoint")
            uploader.locator('input[type="file"]').set_input_files(str(bad))
            page.get_by_text("The file is neither safetensors nor a PyTorch state dict").wait_for(timeout=30_000)
            uploader.locator('input[type="file"]').set_input_files(str(path))
            page.get_by_text("Loaded mine.safetensors as smallcnn (10 classes); it is now the model in use.").wait_for(
                timeout=30_000)
            page.get_by_text("uploaded checkpoint, test accuracy").wait_for(timeout=60_000)
            # an uploaded model is never put in a shareable link (the address follows after the rerun)
            page.wait_for_function("() => !location.search.includes('model=')", timeout=30_000)
            assert "model=" not in page.url
            if hostile_hf is not None:  # a live server's answer and its memory (peak) to a billion labels, in a new tab
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url)
                bench.wait_for_first_screen(page, timeout_ms=120_000)
                page.get_by_text("Your own model").click()
                uploader = page.locator('[data-testid="stFileUploader"]', has_text="Checkpoint")
                config_uploader = page.locator('[data-testid="stFileUploader"]', has_text="Model config")
                config_uploader.locator('input[type="file"]').set_input_files(str(hostile_hf / "config.json"))
                start = time.perf_counter()
                uploader.locator('input[type="file"]').set_input_files(str(hostile_hf / "model.safetensors"))
                page.get_by_text("num_labels must be a whole number from 1 to 100,000").wait_for(timeout=20_000)
                assert time.perf_counter() - start < 20
                assert _peak_rss(server.pid) < memory_budget() + 500 * 2**20
        finally:
            browser.close()


def _hugging_face_folder(folder: Path, **config_changes) -> Path | None:
    """A tiny ViT saved by transformers with ``config_changes`` written into its config.json (None without
    transformers)."""
    try:
        from transformers import ViTConfig, ViTForImageClassification
    except ImportError:
        return None
    config = ViTConfig(image_size=8, patch_size=4, num_channels=1, hidden_size=16, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=32, num_labels=10)
    ViTForImageClassification(config).save_pretrained(folder, safe_serialization=True)
    values = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**values, **config_changes}))
    return folder


def _peak_rss(pid: int) -> int:
    """A process's peak resident memory in bytes (VmHWM: the most it ever held)."""
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def test_a_sessions_uploads_and_their_runs_are_freed_when_the_session_ends(exported):
    """#23.4: nothing outside the session keeps an uploaded model, dataset or their prepared runs alive; the zip's
    folder on disk goes with them. (20 uploads of a 43 MB checkpoint in 20 sessions: RSS flat, see the #23 note.)"""
    import gc
    import weakref

    from ui import store as ui_store
    from ui import uploads as ui_uploads

    weights, meta, _ = exported
    at = new_app()
    at.run()
    upload(at, CKPT_CONFIG, "unlearned.json", meta)
    upload(at, CKPT, "unlearned.safetensors", weights)
    (model,) = at.session_state[ui_uploads.K_MODELS].values()
    store = at.session_state[ui_store.K_SESSION_STORE][1]
    assert store._items["prepared"]  # the upload's run was prepared, in the session's own store
    upload(at, ZIP, "colours.zip", _shapes_zip())
    (data,) = at.session_state[ui_uploads.K_DATASETS].values()
    assert not at.exception and errors(at) == []
    folder = data.folder.path
    assert folder.is_dir()
    alive = [weakref.ref(model.model), weakref.ref(data.dataset), weakref.ref(store)]
    del model, data, store, at
    gc.collect()
    assert [ref() is None for ref in alive] == [True, True, True]
    assert not folder.exists()
