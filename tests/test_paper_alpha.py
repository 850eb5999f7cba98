"""One paper alpha per model (#22): vit_tiny's SSD alpha is 5 in the library, the CLI, and on the
Unlearn, Compare and Landscape pages; the CNNs' is 10. ``MethodSpec.config_for`` is the one place that
reads ``ModelSpec.default_alpha``."""

from __future__ import annotations

import json

import pytest
from apptest_helpers import assert_clean, new_app

from ssd_core.cli import main
from ssd_core.methods import get_method
from ssd_core.models import get_spec

VIT = {"model": "vit_tiny", "forget": "class:3"}


def test_the_library_reads_the_model_paper_alpha_in_one_place():
    ssd = get_method("ssd")
    assert get_spec("vit_tiny").default_alpha == 5.0 and get_spec("smallcnn").default_alpha == 10.0
    assert ssd.config_for("vit_tiny").alpha == 5.0
    assert ssd.config_for("smallcnn").alpha == 10.0
    assert ssd.config_for("vit_tiny", alpha=7.0).alpha == 7.0  # what the caller sets wins
    assert ssd.config_for("no-such-model").alpha == ssd.default_config().alpha  # unknown: the method's own
    assert get_method("lfssd").config_for("vit_tiny").alpha == get_method("lfssd").default_config().alpha
    assert get_method("scrub").model_defaults("vit_tiny") == {}  # scrub's alpha is another quantity


def test_cli_alpha_paper_runs_vit_tiny_at_5_and_lambda_is_a_flag_too(tmp_path, capsys):
    out = tmp_path / "vit.json"
    assert main(["unlearn", "--dataset", "digits", "--model", "vit_tiny", "--method", "ssd", "--alpha", "paper",
                 "--lambda", "0.5", "--forget-class", "3", "--quiet", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["method"] == "ssd" and result["params"]["alpha"] == 5.0 and result["params"]["lam"] == 0.5
    assert main(["unlearn", "--method", "assd", "--alpha", "paper", "--forget-class", "3", "--quiet"]) == 2
    assert "chooses alpha itself" in capsys.readouterr().err
    assert main(["unlearn", "--method", "finetune", "--alpha", "paper", "--forget-class", "3", "--quiet"]) == 2
    assert "--alpha paper is for ssd and lfssd" in capsys.readouterr().err


def test_unlearn_page_link_alpha_paper_and_old_lam_spelling():
    at = new_app({**VIT, "alpha": "paper", "lam": "0.5"}).run()
    assert_clean(at)
    assert at.select_slider(key="alpha").value == 5.0
    assert at.slider(key="lam").value == 0.5


def test_compare_offers_ssd_at_the_model_paper_alpha():
    at = new_app({**VIT, "page": "compare", "method": "lfssd"}).run()
    assert_clean(at)
    at.multiselect(key="cmp_methods").set_value(["ssd"]).run()
    assert at.number_input(key="cmp_cfg_ssd_alpha").value == 5.0


@pytest.mark.parametrize("model, paper", [("vit_tiny", 5.0), ("smallcnn", 10.0)])
def test_landscape_grid_holds_the_model_paper_alpha(model, paper):
    at = new_app({"model": model, "forget": "class:3", "page": "sweep"}).run()
    assert_clean(at)
    at.select_slider(key="ls_alpha_lo").set_value(1.0)
    at.select_slider(key="ls_alpha_hi").set_value(100.0)
    at.slider(key="ls_n_alpha").set_value(3)
    at.slider(key="ls_n_lam").set_value(1)
    at.button(key="FormSubmitter:landscape_form-Compute landscape").click().run()
    assert_clean(at)
    from ui import landscape

    assert paper in landscape.alpha_grid(1.0, 100.0, 3, anchor=paper)
    assert paper in at.session_state[landscape.K_LANDSCAPE]["result"].alphas
