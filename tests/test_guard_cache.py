"""The collapse guard's search, kept: a search made before (on disk, or shipped for Fashion-MNIST's classes) is
read back with one probe when its check holds on this machine, and equals a fresh search; a stored answer that
checks otherwise, a damaged file or other code is searched again."""

from __future__ import annotations

import json

import pytest
from apptest_helpers import both_cores

from ssd_core import guard_cache
from ssd_core.dampening import finite_ratios
from ssd_core.data import ForgetRequest, make_split
from ssd_core.guard import CollapseGuard, adaptive_alpha
from ssd_core.methods.ssd import ssd_importances
from ssd_core.train import load_or_train


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """An empty user cache: only the package's shipped searches (or this test's own) can answer."""
    import ssd_core.train

    monkeypatch.setattr(ssd_core.train, "cache_dir", lambda: tmp_path)
    return tmp_path


@pytest.fixture
def searches(monkeypatch):
    """How many times the search itself ran, and how many probes the guard made."""
    counts = {"searches": 0, "probes": 0}
    search, probe = CollapseGuard._search_fix, CollapseGuard.check_setting

    def counted_search(self, *args, **kwargs):
        counts["searches"] += 1
        return search(self, *args, **kwargs)

    def counted_probe(self, *args, **kwargs):
        counts["probes"] += 1
        return probe(self, *args, **kwargs)

    monkeypatch.setattr(CollapseGuard, "_search_fix", counted_search)
    monkeypatch.setattr(CollapseGuard, "check_setting", counted_probe)
    return counts


def test_a_fashion_class_reads_its_shipped_search_with_one_probe_and_it_equals_a_fresh_search(
        fashion_mnist, empty_cache, searches):
    """T-shirt/top (class 0): automatic α leaves 7.8% recognised, and the wider search takes 51 probes (4-5 s on
    2 cores). The shipped answer is read and checked with one probe, and is the fresh search's."""
    model = load_or_train(fashion_mnist, "smallcnn", device="cpu").model
    split = make_split(fashion_mnist, ForgetRequest("class", 0))
    found = ssd_importances(model, split, "fisher", 64, device="cpu")
    alpha = adaptive_alpha(found.full, found.forget, len(split.forget_train), len(split.train),
                           ratios=finite_ratios(found.full, found.forget)).alpha
    with both_cores():
        guard = CollapseGuard(model, split.retain_train, split.forget_train, "cpu", whole_classes=True)
        kept = guard.fix(model, found.full, found.forget, alpha, 1.0)
        assert searches == {"searches": 0, "probes": 1}, \
            "no shipped search for this code: python scripts/build_checkpoints.py fashion_mnist/smallcnn"
        fresh = CollapseGuard(model, split.retain_train, split.forget_train, "cpu", whole_classes=True,
                              cache=False).fix(model, found.full, found.forget, alpha, 1.0)
    assert searches["searches"] == 1 and fresh.probes == 51
    assert kept.to_dict() == fresh.to_dict() and kept.forgotten and kept.alpha == 59.3
    assert not list(empty_cache.glob("guard/*"))  # a shipped answer that holds is not copied into the cache


def test_a_search_is_kept_read_back_and_searched_again_when_it_does_not_hold(digits_run, empty_cache, searches):
    model, split, imp = digits_run.model, digits_run.split, digits_run.importances
    guard = CollapseGuard(model, split.retain_train, split.forget_train, "cpu", whole_classes=True)
    first = guard.fix(model, imp.full, imp.forget, 300.0, 1.0)  # α = 300 leaves class 0 recognised: a search
    assert first.probes > 5 and searches["searches"] == 1
    [stored] = list(empty_cache.glob("guard/*.json"))
    assert stored.stem == guard_cache.fix_key(guard, model, imp.full, imp.forget, 300.0, 1.0)

    searches["probes"] = 0
    again = guard.fix(model, imp.full, imp.forget, 300.0, 1.0)
    assert searches == {"searches": 1, "probes": 1} and again.to_dict() == first.to_dict()

    values = json.loads(stored.read_text())  # an answer whose check differs here (another CPU, an edited file)
    values["check"]["retain_after"] = 0.5
    stored.write_text(json.dumps(values))
    assert guard.fix(model, imp.full, imp.forget, 300.0, 1.0).to_dict() == first.to_dict()
    assert searches["searches"] == 2 and json.loads(stored.read_text()) == first.to_dict()  # and replaced

    stored.write_text("{")  # damaged
    assert guard.fix(model, imp.full, imp.forget, 300.0, 1.0).to_dict() == first.to_dict()
    assert searches["searches"] == 3

    stored.unlink()  # cache=False (an upload on a shared server, a timed search) reads and writes nothing
    CollapseGuard(model, split.retain_train, split.forget_train, "cpu", whole_classes=True,
                  cache=False).fix(model, imp.full, imp.forget, 300.0, 1.0)
    assert searches["searches"] == 4 and not stored.exists()


def test_the_key_holds_everything_the_answer_depends_on(digits_run, monkeypatch, tmp_path):
    model, split, imp = digits_run.model, digits_run.split, digits_run.importances
    guard = CollapseGuard(model, split.retain_train, split.forget_train, "cpu", whole_classes=True)
    key = guard_cache.fix_key(guard, model, imp.full, imp.forget, 1.0, 1.0)
    assert key == guard_cache.fix_key(guard, model, imp.full, imp.forget, 1.0, 1.0)
    stricter = CollapseGuard(model, split.retain_train, split.forget_train, "cpu", whole_classes=True, threshold=0.01)
    other_forget = {name: t * 2 for name, t in imp.forget.items()}
    assert len({key, guard_cache.fix_key(guard, model, imp.full, imp.forget, 2.0, 1.0),
                guard_cache.fix_key(guard, model, imp.full, imp.forget, 1.0, 0.5),
                guard_cache.fix_key(stricter, model, imp.full, imp.forget, 1.0, 1.0),
                guard_cache.fix_key(guard, model, imp.full, other_forget, 1.0, 1.0)}) == 5
    edited = tmp_path / "guard.py"  # other search code: other key, so an older answer is never read
    edited.write_text(guard_cache._SEARCH_CODE[0].read_text() + "\n# edited\n")
    monkeypatch.setattr(guard_cache, "_SEARCH_CODE", (edited, guard_cache._SEARCH_CODE[1]))
    assert guard_cache.fix_key(guard, model, imp.full, imp.forget, 1.0, 1.0) != key
