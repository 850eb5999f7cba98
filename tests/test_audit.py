"""The audit (did it really forget?): distance to retrain, representation probe, relearning,
offline LiRA with shadow models, seeds; each number against an independent computation or a
property known to hold."""

from __future__ import annotations

import copy
import hashlib
import json
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ssd_core.audit import AuditConfig, audit, build_shadows, find_shadows, retrained_reference
from ssd_core.audit.distance import distance, kl_divergence
from ssd_core.audit.lira import auc, membership, scaled_confidence, shadow_assignment, tpr_at_fpr
from ssd_core.audit.probe import fit_probe, penultimate_features, probe_accuracy, probe_predict
from ssd_core.audit.relearn import pick_relearn_samples, relearn_curve
from ssd_core.audit.runner import audit_request
from ssd_core.audit.seeds import interval, t_quantile
from ssd_core.cli import main
from ssd_core.data import ForgetRequest, ImageDataset, load_dataset, make_split
from ssd_core.errors import InputError
from ssd_core.methods import run_method
from ssd_core.metrics import logits_of
from ssd_core.train import TrainConfig, load_or_train, train_model


def _state_hash(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()



@pytest.fixture(scope="module", autouse=True)
def _both_cores():
    """Library computation only (no server, no browser): use both cores of the CI machine."""
    from apptest_helpers import both_cores

    with both_cores():
        yield


@pytest.fixture(scope="module")
def class3():
    dataset = load_dataset("digits")
    split = make_split(dataset, ForgetRequest("class", target=3))
    original = load_or_train(dataset, "smallcnn").model
    retrained = retrained_reference(split, "smallcnn", seed=0).model
    unlearned = run_method("assd", original, split).model
    return dataset, split, original, retrained, unlearned


@pytest.fixture(scope="module")
def class3_audit(class3):
    dataset, split, original, retrained, unlearned = class3
    shadows = find_shadows(dataset, "smallcnn")
    hashes = [_state_hash(m) for m in (original, retrained, unlearned)]
    report = audit(original, unlearned, split, retrained, shadows=shadows, name="assd")
    return report, hashes


def test_the_shipped_digits_shadows_are_found(class3):
    shadows = find_shadows(class3[0], "smallcnn")
    assert shadows is not None and shadows.source == "shipped" and shadows.count == 16
    # every training image is in exactly half of the shadows
    assert torch.equal(shadows.in_mask.sum(0), torch.full((len(class3[0].train_y),), 8))


def test_distance_to_retrain_is_zero_for_itself_and_smaller_after_unlearning(class3, class3_audit):
    _, split, original, retrained, unlearned = class3
    report, _ = class3_audit
    itself = distance(logits_of(retrained, split.forget_test, "cpu"), logits_of(retrained, split.forget_test, "cpu"))
    assert itself.kl == pytest.approx(0.0, abs=1e-9) and itself.js == pytest.approx(0.0, abs=1e-7)
    assert report.retrained.distance["forget_test"].js == pytest.approx(0.0, abs=1e-7)
    original_js = report.original.distance["forget_test"].js
    unlearned_js = report.unlearned["assd"].distance["forget_test"].js
    assert original_js > 5 * unlearned_js  # measured: 0.667 against 0.052 nats
    assert report.original.distance["forget_test"].kl > report.unlearned["assd"].distance["forget_test"].kl
    # KL against an independent computation
    p = F.softmax(logits_of(retrained, split.forget_test, "cpu").double(), 1)
    q = F.softmax(logits_of(unlearned, split.forget_test, "cpu").double(), 1)
    independent = float((p * (p.log() - q.log())).sum(1).mean())
    assert report.unlearned["assd"].distance["forget_test"].kl == pytest.approx(independent, rel=1e-6)
    # #24.3 total variation: 0 for the retrained model itself, by hand (numpy) for the unlearned one, and per class
    assert report.retrained.distance["forget_test"].total_variation == pytest.approx(0.0, abs=1e-12)
    by_hand = 0.5 * np.abs(p.numpy() - q.numpy()).sum(1).mean()
    found = report.unlearned["assd"].distance["forget_test"].total_variation
    assert found == pytest.approx(by_hand, rel=1e-9) and 0 < found < 1
    assert report.original.distance["forget_test"].total_variation > found  # the original still answers "3"
    tv3 = report.unlearned["assd"].per_class_tv[3]
    assert tv3 == pytest.approx(by_hand, rel=1e-9)  # the forget-test images are the test split's class 3
    assert all(v == pytest.approx(0.0, abs=1e-12) for v in report.retrained.per_class_tv)


def test_retain_only_relearning_is_a_verdict_row_against_the_retrained_model(class3, class3_audit):
    """#24.2: each model is fine-tuned on the same 256 retain images (none of class 3); the curve starts at the
    model's forget-test accuracy, the retrained model's stays near its own level, and the row compares peaks."""
    from ssd_core.audit.relearn import RELEARN_STEPS, RETAIN_RELEARN_K

    _, split, original, retrained, unlearned = class3
    report, _ = class3_audit
    retain = pick_relearn_samples(split.retain_train, RETAIN_RELEARN_K, 1)
    assert len(retain) == RETAIN_RELEARN_K and not bool((retain.y == 3).any())
    for model_audit in (report.original, report.retrained, report.unlearned["assd"]):
        curve = model_audit.retain_relearn
        assert curve is not None and len(curve.accuracy) == RELEARN_STEPS + 1 and curve.k == RETAIN_RELEARN_K
        assert curve.accuracy[0] == pytest.approx(model_audit.forget_test_acc)
    assert max(report.retrained.retain_relearn.accuracy) <= 0.05  # never learnt, never shown: stays out
    row = next(r for r in report.verdicts["assd"] if r.test == "retain_relearning")
    assert row.value == max(report.unlearned["assd"].retain_relearn.accuracy)
    assert row.retrained == max(report.retrained.retain_relearn.accuracy)
    assert row.forgotten == (row.value <= row.retrained + 0.05) and "retain images only" in row.sentence


def test_kl_of_known_distributions():
    p = torch.tensor([[0.0, 0.0]])  # uniform
    q = torch.tensor([[np.log(3.0), 0.0]])  # 0.75 / 0.25
    expected = 0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(0.5 / 0.25)
    assert float(kl_divergence(p, q)[0]) == pytest.approx(expected, rel=1e-9)


def test_the_probe_fits_a_linear_rule_and_reads_features_of_the_last_linear_layer(class3):
    _, split, original, *_ = class3
    features = penultimate_features(original, split.forget_test, "cpu")
    assert features.shape == (len(split.forget_test), 128)  # smallcnn: the input of classifier.3
    # the features are what the head sees: head(features) equals the model's logits
    head = original.net.classifier[3]
    assert torch.allclose(head(features), logits_of(original, split.forget_test, "cpu"), atol=1e-4)
    # a linearly separable toy problem is learnt exactly
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(300, 5, generator=generator)
    y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()
    probe = fit_probe(x, y, 4)
    assert float((probe_predict(probe, x) == y).double().mean()) > 0.97


def test_the_probe_reads_the_class_from_the_original_but_not_from_blind_features(class3):
    dataset, split, original, *_ = class3
    assert probe_accuracy(original, split.train, split.forget_test, dataset.num_classes) > 0.95

    class Blind(torch.nn.Module):  # features that carry no information about the image
        def __init__(self) -> None:
            super().__init__()
            self.head = torch.nn.Linear(4, dataset.num_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(torch.ones(len(x), 4))

    # blind features: the probe can only predict one class for every image (at most the largest class's share)
    blind = probe_accuracy(Blind(), split.train, split.test, dataset.num_classes)
    assert blind <= float(torch.bincount(split.test.y).max()) / len(split.test) + 1e-9


def test_probe_on_digits_is_reported_with_its_random_feature_floor(class3_audit):
    report, _ = class3_audit
    # Measured: on 8x8 digits the retrained model's features (never trained on 3) still let a probe
    # read 3s at 100%, and so do a randomly initialised model's: the probe cannot separate
    # forgetting from hiding on this data, and the audit says so instead of implying either.
    assert report.original.probe_forget_acc > 0.95
    assert report.probe_random is not None
    assert any("randomly initialised" in note for note in report.notes)
    assert report.verdicts["assd"][1].test == "features"


def test_relearning_original_needs_no_step_and_the_curve_equals_an_independent_loop(class3):
    dataset, split, original, retrained, unlearned = class3
    samples = pick_relearn_samples(split.forget_train, 10, seed=0)
    assert len(samples) == 10 and bool((samples.y == 3).all())
    assert relearn_curve(original, samples, split.forget_test, steps=3).steps_to_target == 0
    curve = relearn_curve(unlearned, samples, split.forget_test, steps=5)
    # the same schedule written out by hand
    work = copy.deepcopy(unlearned).eval()
    optimizer = torch.optim.Adam(work.parameters(), lr=1e-3)
    x = samples.x.float() / 255.0
    expected = []
    for step in range(6):
        with torch.no_grad():
            acc = float((work(split.forget_test.x.float() / 255.0).argmax(1) == split.forget_test.y).double().mean())
        expected.append(acc)
        if step < 5:
            optimizer.zero_grad()
            F.cross_entropy(work(x), samples.y).backward()
            optimizer.step()
    assert curve.accuracy == pytest.approx(expected, abs=1e-12)
    assert curve.accuracy[0] == 0.0


def test_audit_relearning_rows(class3_audit):
    report, _ = class3_audit
    assert report.original.relearn.steps_to_target == 0
    assert report.retrained.relearn.accuracy[0] == 0.0
    assert report.retrained.relearn.steps_to_target is not None  # measured: 7 steps
    assert len(report.retrained.relearn.accuracy) == AuditConfig().relearn_steps + 1


def test_auc_and_tpr_against_independent_computations():
    from sklearn.metrics import roc_auc_score, roc_curve

    rng = np.random.default_rng(0)
    members, non_members = rng.normal(0.5, 1.0, 200), rng.normal(0.0, 1.0, 300)
    members[:20] = non_members[:20]  # ties
    labels = np.r_[np.ones(200), np.zeros(300)]
    scores = np.r_[members, non_members]
    assert auc(members, non_members) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    fpr, tpr, _ = roc_curve(labels, scores)
    for target in (0.01, 0.05):
        assert tpr_at_fpr(members, non_members, target) == pytest.approx(tpr[fpr <= target].max(), abs=1e-12)


def test_scaled_confidence_and_shadow_assignment():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    p = torch.softmax(logits.double(), 1)[0, 0]
    assert float(scaled_confidence(logits, torch.tensor([0]))[0]) == pytest.approx(float(torch.log(p / (1 - p))), rel=1e-6)
    mask = shadow_assignment(50, 8, seed=1)
    assert mask.shape == (8, 50) and bool((mask.sum(0) == 4).all())
    assert torch.equal(mask, shadow_assignment(50, 8, seed=1))


def test_lira_finds_members_of_an_overfit_model_and_not_of_the_retrained_one(class3_audit):
    digits = load_dataset("digits")
    generator = torch.Generator().manual_seed(0)
    pick = torch.randperm(len(digits.train_y), generator=generator)[:200]
    small = ImageDataset("digits200", digits.train_x[pick], digits.train_y[pick], digits.test_x, digits.test_y,
                         digits.classes, digits.mean, digits.std)
    config = TrainConfig("digits200", "smallcnn", epochs=40, lr=2e-3, batch_size=32, seed=0)
    overfit = train_model(small, config, device="cpu").model
    split = make_split(small, ForgetRequest("random", k=100, seed=0))
    assert float((logits_of(overfit, small.train(), "cpu").argmax(1) == small.train_y).double().mean()) == 1.0
    shadows = build_shadows(small, "smallcnn", count=8, config=config, cache=False)
    found = membership(overfit, split, shadows)
    assert found.auc > 0.7, found.auc  # members clearly above non-members
    # the retrained digits model: its forget-train looks like unseen images of the same class
    report, _ = class3_audit
    retrained = report.retrained.lira
    assert retrained is not None and abs(retrained.auc - 0.5) < 0.15, retrained.auc


def test_same_seed_same_audit_and_models_untouched(class3, class3_audit):
    dataset, split, original, retrained, unlearned = class3
    report, hashes = class3_audit
    assert [_state_hash(m) for m in (original, retrained, unlearned)] == hashes
    again = audit(original, unlearned, split, retrained, shadows=find_shadows(dataset, "smallcnn"), name="assd")
    first, second = report.to_dict(), again.to_dict()
    first.pop("seconds"), second.pop("seconds")
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_intervals_use_students_t():
    values = [0.1, 0.2, 0.3, 0.4, 0.5]
    found = interval(values)
    sd = float(np.std(values, ddof=1))
    assert found.mean == pytest.approx(0.3)
    assert found.hi - found.mean == pytest.approx(2.776 * sd / np.sqrt(5), rel=1e-9)
    assert t_quantile(4) == 2.776 and t_quantile(100) == 1.96
    assert interval([None, 0.4]).lo == 0.4 and interval([]).mean is None
    near_one = interval([0.99, 1.0, 0.985], bounds=(0.0, 1.0))  # an accuracy's interval stops at 100%
    assert near_one.hi == 1.0 and near_one.lo == interval([0.99, 1.0, 0.985]).lo


def test_cli_audit_json_and_bad_input(capsys):
    assert main(["audit", "--dataset", "digits", "--forget-class", "3", "--quiet", "--json", "-"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result["audit"]["verdicts"]) == ["assd"]
    rows = {row["test"]: row for row in result["audit"]["verdicts"]["assd"]}
    assert set(rows) == {"output", "features", "attack", "relearning", "retain_relearning", "representation"}
    assert rows["output"]["forgotten"] is True
    # #24.6 the JSON carries the layer rows and the embedding of every model
    for model in ("original", "retrained"):
        layers = result["audit"][model]["layers"]
        assert [row["block"] for row in layers][-1] == "features" and "cka_retrained_forget" in layers[0]
        assert len(result["audit"][model]["embedding"]["points"]) == len(result["audit"][model]["embedding"]["labels"])
    assert set(result["audit"]["probe_random_layers"]) == {row["block"] for row in result["audit"]["original"]["layers"]}
    assert result["audit"]["shadows"] == {"count": 16, "source": "shipped", "seed": 0, "epochs": 15}
    assert main(["audit", "--dataset", "digits", "--forget-class", "3", "--shadows", "3"]) == 2
    assert "even" in capsys.readouterr().err
    # #23.5: counts no audit could finish are refused at once (they ran until killed), from the numbers alone
    for flag, value, words in (("--shadows", "100000", "0 to 64 shadow models"), ("--seeds", "1000000", "at most 20 seeds")):
        start = time.perf_counter()
        assert main(["audit", "--dataset", "fashion_mnist", "--forget-class", "0", flag, value]) == 2
        assert time.perf_counter() - start < 2.0  # before the data or the model is loaded
        err = capsys.readouterr().err
        assert words in err and value in err and len(err.strip().splitlines()) == 1
    with pytest.raises(InputError, match="at most 20 seeds"):  # the library (and so the Audit page) refuses too
        audit_request(None, None, "smallcnn", {"assd": {}}, seeds=21)  # type: ignore[arg-type]


def test_the_features_row_gives_no_verdict_when_random_features_already_read_the_class():
    """On 8x8 digits a probe reads the class from a random network (97%): "forgotten" there would mean nothing."""
    from ssd_core.audit import ModelAudit, verdicts

    def audit(probe: float) -> ModelAudit:
        return ModelAudit("m", 0.0, 0.99, 0.0, {}, [], probe, None, None)

    row = next(v for v in verdicts(audit(0.98), audit(0.1), audit(1.0), probe_random=0.973) if v.test == "features")
    assert row.forgotten is None and "cannot tell forgetting from hiding" in row.sentence and "97.3%" in row.sentence
    decided = next(v for v in verdicts(audit(0.98), audit(0.1), audit(1.0), probe_random=0.2) if v.test == "features")
    assert decided.forgotten is True


# ---------------------------------------------------------------------------------------------
# #24.1 Layer by layer: CKA, per-block probes, the picture of hiding


def test_linear_cka_against_its_feature_space_formula_and_its_invariances():
    from ssd_core.audit.layers import linear_cka

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(50, 7, generator=generator, dtype=torch.float64)
    y = x @ torch.randn(7, 4, generator=generator, dtype=torch.float64) + 0.5 * torch.randn(50, 4, generator=generator,
                                                                                          dtype=torch.float64)
    xc, yc = (x - x.mean(0)).numpy(), (y - y.mean(0)).numpy()  # Kornblith et al. (2019), eq. 5, in numpy
    by_formula = np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    assert linear_cka(x, y) == pytest.approx(by_formula, rel=1e-10)
    assert linear_cka(x, x) == pytest.approx(1.0)
    rotation, _ = torch.linalg.qr(torch.randn(7, 7, generator=generator, dtype=torch.float64))
    assert linear_cka(x, 3.0 * x @ rotation + 2.0) == pytest.approx(1.0)  # rotation, scale and shift do not count
    assert linear_cka(x, torch.randn(50, 7, generator=generator, dtype=torch.float64)) < 0.5


@pytest.mark.parametrize(("dataset", "model", "expected"), [
    ("digits", "smallcnn", ["net.features.0", "net.features.4", "net.features.8", "net.classifier.1", "features"]),
    ("shapes", "resnet18_narrow", ["net.conv1", *[f"net.layer{i}.{j}" for i in range(1, 5) for j in (0, 1)], "features"]),
])
def test_blocks_are_found_from_the_module_tree(dataset, model, expected):
    from ssd_core.audit.layers import blocks
    from ssd_core.models import build_for_dataset

    assert blocks(build_for_dataset(model, load_dataset(dataset))) == expected


def test_layer_rows_of_the_audit(class3, class3_audit):
    from ssd_core.audit.layers import FEATURES, block_outputs, layer_samples, linear_cka

    dataset, split, original, retrained, unlearned = class3
    report, _ = class3_audit
    names = [row.block for row in report.retrained.layers]
    assert names[-1] == FEATURES and len(names) == 5
    # the retrained model's own CKA to the retrained model is 1 at every block, and the original's to the original
    assert all(row.cka_retrained_forget == pytest.approx(1.0) for row in report.retrained.layers)
    assert all(row.cka_original_retain == pytest.approx(1.0) for row in report.original.layers)
    # the penultimate row recomputed from the features read independently (penultimate_features)
    samples = layer_samples(split, 0)
    mine = penultimate_features(unlearned, samples.forget)
    theirs = penultimate_features(retrained, samples.forget)
    last = report.unlearned["assd"].layers[-1]
    assert last.cka_retrained_forget == pytest.approx(linear_cka(mine, theirs), rel=1e-9)
    # a block read before an in-place ReLU is its own output, not the ReLU's
    outputs = block_outputs(original, samples.forget, ["net.classifier.1", FEATURES])
    assert bool((outputs["net.classifier.1"] < 0).any()) and not bool((outputs[FEATURES] < 0).any())
    # SSD dampens a few parameters: inside, the unlearned model stays closer to the original than to retrain
    assert last.cka_original_forget > last.cka_retrained_forget
    (row,) = [v for v in report.verdicts["assd"] if v.test == "representation"]
    assert row.forgotten is False and row.retrained == 1.0 and "closer to the original" in row.sentence
    # probes at every block, with the random network's floor at the same blocks
    assert set(report.probe_random_layers) == set(names)
    assert all(0.0 <= row.probe <= 1.0 for row in report.unlearned["assd"].layers)


def test_the_embedding_is_pca_of_the_features_on_shared_axes(class3, class3_audit):
    from ssd_core.audit.layers import layer_samples, own_cluster, pca_2d
    from unlearning_lab.figures_audit import embedding_figure, layers_figure

    dataset, split, original, retrained, unlearned = class3
    report, _ = class3_audit
    samples = layer_samples(split, 0)
    embedded = report.unlearned["assd"].embedding
    assert len(embedded.points) == len(samples.forget) + len(samples.retain) == len(embedded.labels)
    assert sum(embedded.forget) == len(samples.forget)
    points = torch.tensor(embedded.points, dtype=torch.float64)
    assert points.std(0).tolist() == pytest.approx([1.0, 1.0], abs=1e-3)  # unit variance per axis: shared axes
    assert bool((points[:len(samples.forget)].mean(0) >= 0).all())  # the forget images on each axis's positive side
    # PCA by hand: the projection spans the top two right singular vectors of the centred features
    features = torch.cat([penultimate_features(unlearned, samples.forget), penultimate_features(unlearned, samples.retain)])
    centred = (features.double() - features.double().mean(0)).numpy()
    top = np.linalg.svd(centred, full_matrices=False)[2][:2]
    projected = centred @ top.T
    for axis in range(2):
        assert abs(np.corrcoef(projected[:, axis], pca_2d(features)[:, axis].numpy())[0, 1]) == pytest.approx(1.0)
    labels = torch.tensor(embedded.labels)
    assert embedded.own_cluster == pytest.approx(own_cluster(features, labels, 3))
    # two points by hand: a class far from the rest is all its own; mixed classes are not
    far = torch.cat([torch.zeros(5, 2), torch.full((5, 2), 10.0)])
    assert own_cluster(far, torch.tensor([0] * 5 + [1] * 5), 1) == 1.0
    trio = {n: m.embedding.to_dict() for n, m in (("original", report.original), ("assd", report.unlearned["assd"]),
                                                   ("retrain", report.retrained))}
    figure = embedding_figure(trio, dataset.classes, [3])
    assert len(figure.data) == 6 and figure.layout.xaxis3.matches == "x" and figure.layout.yaxis3.matches == "y"
    layered = {"original": [r.to_dict() for r in report.original.layers],
               "assd": [r.to_dict() for r in report.unlearned["assd"].layers]}
    assert len(layers_figure(layered, report.probe_random_layers, "assd").data) == 2 + 2 + 1


def test_train_seeds_audit_against_three_shipped_originals_each_with_its_own_reference(capsys, tmp_path, monkeypatch):
    """#24.4: --train-seeds N runs each method from N original models (the shipped digits seeds 0-2: nothing to
    train for the originals), each against a retrained model of its own seed; intervals over the N."""

    monkeypatch.setenv("UNLEARNING_LAB_CACHE", str(tmp_path))  # no cached originals: the shipped ones must be found
    dataset = load_dataset("digits")
    from ssd_core.train import find_checkpoint

    assert [find_checkpoint(dataset, "smallcnn", seed=s) for s in range(3)] == ["shipped"] * 3
    assert main(["audit", "--dataset", "digits", "--forget-class", "3", "--method", "assd", "--shadows", "0",
                 "--train-seeds", "3", "--quiet", "--json", "-"]) == 0
    result = json.loads(capsys.readouterr().out)
    spread = result["train_seeds"]["assd"]
    assert len(spread["retain_test_acc"]["values"]) == 3 and result["seeds"] == {}
    lo, hi, mean = (spread["retain_test_acc"][k] for k in ("lo", "hi", "mean"))
    assert lo <= mean <= hi
    # seed 2 of the intervals is assd from the seed-2 original against the seed-2 retrained model
    split = make_split(dataset, ForgetRequest("class", target=3))
    seed2 = load_or_train(dataset, "smallcnn", seed=2).model
    unlearned = run_method("assd", seed2, split).model  # assd has no seed of its own: the original differs
    from ssd_core.metrics import evaluate

    assert spread["retain_test_acc"]["values"][2] == pytest.approx(evaluate(unlearned, split, with_mia=False).retain_test_acc)
    # the new rows per training seed: total variation by hand, CKA of the features from its formula (seed 2)
    from ssd_core.audit.layers import layer_samples
    from ssd_core.metrics import logits_of

    reference = retrained_reference(split, "smallcnn", seed=2).model
    p, q = (F.softmax(logits_of(m, split.forget_test, "cpu").double(), 1) for m in (unlearned, reference))
    assert spread["total_variation_forget_test"]["values"][2] == pytest.approx(float(0.5 * (p - q).abs().sum(1).mean()),
                                                                                 rel=1e-6)
    forget = layer_samples(split, 0).forget
    x, y = (penultimate_features(m, forget).double() for m in (unlearned, seed2))
    xc, yc = (x - x.mean(0)).numpy(), (y - y.mean(0)).numpy()
    by_formula = np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    assert spread["cka_original_features"]["values"][2] == pytest.approx(by_formula, rel=1e-6)
    assert 0.0 <= spread["cka_retrained_features"]["values"][2] <= 1.0
    originals = {_state_hash(load_or_train(dataset, "smallcnn", seed=s).model) for s in range(3)}
    assert len(originals) == 3  # three different original models
    assert main(["audit", "--dataset", "digits", "--forget-class", "3", "--train-seeds", "21"]) == 2
    assert "at most 20 training seeds" in capsys.readouterr().err


def test_the_umap_picture_where_umap_learn_is_installed_and_one_sentence_where_not(class3, monkeypatch, capsys):
    """#24.5: UMAP instead of PCA where umap-learn is installed (the test extras install it): seeded, on the same
    unit-variance axes, a well-separated class drawn apart; without the package one sentence, before any work."""
    import ssd_core.audit.layers as layers
    from ssd_core.audit.layers import check_embedding, embeddings, umap_2d
    from ssd_core.cli import main
    from unlearning_lab.figures_audit import embedding_figure

    assert layers.umap_installed()  # requirements-test.txt pins umap-learn: this test must not skip
    generator = torch.Generator().manual_seed(0)
    apart = torch.cat([torch.randn(60, 16, generator=generator), torch.randn(60, 16, generator=generator) + 8.0])
    points = umap_2d(apart, seed=1)
    assert points.shape == (120, 2) and points.std(0).tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
    assert torch.equal(points, umap_2d(apart, seed=1))  # seeded: the same picture twice
    a, b = points[:60].mean(0), points[60:].mean(0)  # the two clusters stay apart in 2-D
    spread = max(float(points[:60].std(0).max()), float(points[60:].std(0).max()))
    assert float((a - b).norm()) > 3 * spread
    dataset, split, original, retrained, unlearned = class3
    trio = embeddings({"original": original, "assd": unlearned, "retrain": retrained}, split, 0, method="umap")
    assert {e.method for e in trio.values()} == {"umap"}
    assert trio["assd"].own_cluster == embeddings({"assd": unlearned}, split, 0)["assd"].own_cluster  # full features
    figure = embedding_figure({n: e.to_dict() for n, e in trio.items()}, dataset.classes, [3])
    assert figure.layout.xaxis.title.text == "UMAP 1" and figure.layout.yaxis.title.text == "UMAP 2"
    # without the package: one sentence from the library and the CLI (exit 2), before anything is computed
    monkeypatch.setattr(layers, "umap_installed", lambda: False)
    with pytest.raises(InputError, match=r"needs the umap-learn package \(pip install umap-learn\); PCA needs nothing"):
        check_embedding("umap")
    assert main(["audit", "--dataset", "digits", "--forget-class", "3", "--embedding", "umap", "--shadows", "0"]) == 2
    err = capsys.readouterr().err
    assert "needs the umap-learn package" in err and "Traceback" not in err
    with pytest.raises(InputError, match="Unknown embedding 'tsne': choose pca or umap"):
        check_embedding("tsne")


def test_the_audit_makes_one_pass_per_model_and_its_numbers_equal_separate_passes(class3, monkeypatch):
    """Each audited model's logits on every image come from one pass (the original's from ssd_core.original_outputs,
    the retrained model's shared with its own row), and feed its accuracies, distances and LiRA; every number equals
    what a pass per subset gives (Fashion-MNIST class 0, assd: the CLI's audit 160.6 -> 94.8 s, the same JSON)."""
    import ssd_core.audit as audit_module
    from ssd_core.metrics import evaluate

    dataset, split, original, retrained, unlearned = class3
    passes = []
    real = audit_module.split_outputs
    monkeypatch.setattr(audit_module, "split_outputs", lambda model, *a, **k: passes.append(model) or real(model, *a, **k))
    shadows = find_shadows(dataset, "smallcnn")
    report = audit(original, unlearned, split, retrained, shadows=shadows, name="assd",
                   config=AuditConfig(layers=False, relearn_steps=1))
    assert passes == [retrained, unlearned]  # the retrained model once (reference and its own row); the original none
    for audited, model in ((report.original, original), (report.unlearned["assd"], unlearned), (report.retrained, retrained)):
        by_subset = {s: distance(logits_of(model, getattr(split, s), "cpu"), logits_of(retrained, getattr(split, s), "cpu"))
                     for s in ("forget_test", "forget_train", "retain_test")}
        assert audited.distance == by_subset, audited.name
        alone = evaluate(model, split, with_mia=False)
        assert (audited.forget_test_acc, audited.retain_test_acc, audited.forget_train_acc) == \
            (alone.forget_test_acc, alone.retain_test_acc, alone.forget_train_acc)
        assert audited.lira == membership(model, split, shadows), audited.name  # LiRA from its own two passes
