"""An installed wheel works as the repository does: built from the checkout, installed into a fresh
venv outside it, run from another folder with an empty cache, the CLI unlearns with the shipped
checkpoint (nothing is trained) and lists the methods."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh venv holding only the wheel (its dependencies come from this venv)."""
    where = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(where / "dist")], check=True, cwd=where, timeout=300)
    (wheel,) = (where / "dist").glob("ssd_core-*.whl")
    env_dir = where / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, timeout=300)
    # torch, numpy, ... from this environment, appended after the venv's own site-packages (a .pth
    # line adds a folder without running that folder's .pth files, so the repo's editable install
    # stays out)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python


def run(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["UNLEARNING_LAB_CACHE"] = str(cwd / "empty-cache")
    return subprocess.run([str(python), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_installed_wheel_unlearns_with_the_shipped_checkpoint(installed: Path, tmp_path: Path) -> None:
    where = run(installed, "-c", "import ssd_core, unlearning_lab; print(ssd_core.__file__, unlearning_lab.__file__)",
                cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert all(str(ROOT) not in path for path in where.stdout.split()), where.stdout  # not the checkout
    result = run(installed, "-m", "ssd_core", "unlearn", "--dataset", "digits", "--model", "smallcnn", "--forget-class",
                 "3", "--method", "ssd", "--alpha", "30", "--quiet", "--json", "-", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["model_source"] == "shipped"  # found inside the installed package: nothing trained
    assert report["after"]["forget_test_acc"] < 0.1 < report["after"]["retain_test_acc"]
    assert not (tmp_path / "empty-cache" / "models").exists()


def test_installed_wheel_lists_every_method(installed: Path, tmp_path: Path) -> None:
    result = run(installed, "-m", "ssd_core", "list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for method in ("ssd", "lfssd", "retrain", "l2ul", "saps"):
        assert method in result.stdout
