"""The command line's grammar: every subcommand, option and help text of ``python -m ssd_core``, and
the value checks argparse runs (a bad value exits with status 2 and one sentence)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn

from .errors import InputError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one sentence, exit 2, no usage dump
        raise InputError(message[0].upper() + message[1:] + ("" if message.endswith(".") else "."))


def _finite_float(text: str) -> float:
    from .indices import parse_float

    try:
        return parse_float(text)
    except InputError:
        raise argparse.ArgumentTypeError(f"'{text[:20]}' is not a finite number written with the digits 0-9") from None


def _whole(text: str) -> int:
    from .indices import parse_whole_number

    try:
        return parse_whole_number(text)
    except InputError:
        raise argparse.ArgumentTypeError(f"'{text[:20]}' is not a whole number written with the digits 0-9") from None


def _checked_whole(check: str) -> Callable[[str], int]:
    """An argparse type: a whole number that ``ssd_core.memory.<check>`` accepts (its one-sentence refusal becomes
    argparse's; imported when used, as the other checks are)."""

    def parse(text: str) -> int:
        from . import memory

        value = _whole(text)
        try:
            getattr(memory, check)(value)
        except InputError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return value

    return parse


_batch = _checked_whole("check_batch_size")
_workers = _checked_whole("check_workers")


def _eval_sample(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError("--eval-sample needs at least 1 image per subset.")
    return value


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """Options shared by unlearn and audit: data, model, request, SSD settings, output."""
    p.add_argument("--dataset", default="digits")
    p.add_argument("--model", help="architecture (default: the dataset's own, e.g. shapes -> resnet18_narrow)")
    p.add_argument("--model-factory", metavar="PACKAGE.MODULE:FUNCTION",
                   help="your own architecture: function(in_channels, num_classes, image_size) -> nn.Module "
                        "(importing it runs your code)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--forget-class", help="class index or name")
    what.add_argument("--forget-subclass", help="fine class inside a superclass (e.g. cifar20: rocket)")
    what.add_argument("--forget-random", type=_whole, metavar="K", help="K random training samples")
    what.add_argument("--forget-indices", help="training indices, e.g. 1,5,9 or 10-20")
    p.add_argument("--alpha", type=_alpha,
                   help="selection threshold for ssd/lfssd, 'auto' (the default: the adaptive alpha of "
                        "assd/alfssd, then the collapse guard's correction when it fires) or 'paper' (the model's "
                        "paper value: 10 for the CNNs, 5 for vit_tiny)")
    p.add_argument("--guard", action="store_true",
                   help="SSD family: when dampening collapses the retained classes, use the alpha the collapse "
                        "guard suggests (without it the guard only warns)")
    p.add_argument("--lambda", "--lam", dest="lam", type=_finite_float,
                   help="dampening constant lambda (SSD/LFSSD); the link key is 'lambda' too")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="any method option, repeatable")
    p.add_argument("--seed", type=_whole, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--data-dir", help="folder with the dataset files (file-based datasets)")
    p.add_argument("--download", action="store_true", help="download the dataset if missing")
    p.add_argument("--checkpoint", help="your own weights (.safetensors, or a .pt/.pth state dict)")
    p.add_argument("--checkpoint-config", help="JSON config saved with an exported model")
    p.add_argument("--json", dest="json_path", metavar="FILE",
                   help="write the full result as JSON to FILE ('-': to stdout instead of the summary)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m ssd_core`` (unlearn, train, list, ...)."""
    parser = _Parser(prog="python -m ssd_core", description="Machine unlearning for image classifiers.")
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE",
                        help="a Python file that registers methods (repeatable; importing it runs it)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    unlearn = sub.add_parser("unlearn", help="unlearn a forget request and report before/after metrics")
    _add_run_options(unlearn)
    unlearn.add_argument("--method", default="ssd")
    unlearn.add_argument("--eval-sample", type=_eval_sample, metavar="N",
                         help="read every metric on a fixed, class-stratified, seeded sample of at most N images of each "
                         "of forget/retain x train/test (the Unlearn page's fast moves on large data); default: all")
    unlearn.add_argument("--save-model", help="write the unlearned model to PATH.safetensors + PATH.json")
    unlearn.add_argument("--stream-dir", metavar="DIR",
                         help="training images in DIR/<class>/ read batch by batch (memory independent of their "
                              "number): ssd, lfssd, assd or alfssd with --forget-class, --checkpoint and "
                              "--checkpoint-config")
    unlearn.add_argument("--stream-test-dir", metavar="DIR", help="test images in DIR/<class>/, for the accuracies")
    unlearn.add_argument("--batch-size", type=_batch, default=64, help="importance batch size (with --stream-dir)")
    unlearn.add_argument("--workers", type=_workers, default=0, help="decoding processes (with --stream-dir)")

    audit = sub.add_parser("audit", help="did it really forget? audit methods against the retrained model")
    _add_run_options(audit)
    audit.add_argument("--method", action="append", dest="methods", metavar="NAME",
                       help="a method to audit (repeatable; default: ssd with auto alpha)")
    audit.add_argument("--seeds", type=_whole, default=0, metavar="S",
                       help="also run each method over S seeds and report means with 95%% intervals (0: one run)")
    audit.add_argument("--train-seeds", type=_whole, default=0, metavar="N",
                       help="also run each method from N original models (training seeds 0..N-1, each with its own "
                       "retrained reference) and report means with 95%% intervals; digits/smallcnn ships seeds 0-2")
    audit.add_argument("--shadows", type=_whole, default=None, metavar="K",
                       help="LiRA shadow models (even; 0: no per-example attack; default: 16, or 8 shorter-trained "
                       "ones from 20,000 training images on); built once and cached when missing")
    audit.add_argument("--embedding", choices=("pca", "umap"), default="pca",
                       help="how the picture of hiding flattens the penultimate features to 2-D (umap needs the "
                       "umap-learn package)")
    audit.add_argument("--no-build-shadows", action="store_true",
                       help="skip LiRA when no shadow models are shipped or cached (instead of training them)")

    train = sub.add_parser("train", help="train (or load) the original model and print its test accuracy")
    train.add_argument("--dataset", default="digits")
    train.add_argument("--model", help="architecture (default: the dataset's own)")
    train.add_argument("--model-factory", metavar="PACKAGE.MODULE:FUNCTION", help="your own architecture")
    train.add_argument("--seed", type=_whole, default=0)
    train.add_argument("--device", default="auto")
    train.add_argument("--data-dir")
    train.add_argument("--download", action="store_true")
    train.add_argument("--out", help="also save the weights to OUT.safetensors + OUT.json")
    train.add_argument("--quiet", action="store_true")

    imp = sub.add_parser("importance", help="compute and cache I_D (the full-data importance); runs under torchrun")
    imp.add_argument("--dataset", default="digits")
    imp.add_argument("--model", help="architecture (default: the dataset's own)")
    imp.add_argument("--estimator", default="fisher", help="fisher, fisher_exact, lossfree or mas")
    imp.add_argument("--batch-size", type=_batch, default=64)
    imp.add_argument("--seed", type=_whole, default=0)
    imp.add_argument("--device", default="auto")
    imp.add_argument("--data-dir")
    imp.add_argument("--stream-dir", metavar="DIR",
                     help="an image folder (DIR/<class>/*.png) read batch by batch instead of loaded whole; needs "
                          "--checkpoint, --checkpoint-config and --out")
    imp.add_argument("--workers", type=_workers, default=0, help="decoding processes for --stream-dir")
    imp.add_argument("--checkpoint", help="the model's weights (with --stream-dir)")
    imp.add_argument("--checkpoint-config", help="the model's config JSON (with --stream-dir)")
    imp.add_argument("--out", help="write I_D to OUT.safetensors (with --stream-dir)")
    imp.add_argument("--autocast", choices=["bf16"],
                     help="also run the pass under bfloat16 autocast and report its speed and how many parameters SSD "
                          "selects differently than with float32 (the cache keeps the float32 I_D)")
    imp.add_argument("--forget-class", type=_whole, default=0,
                     help="the class whose forget importance --autocast compares (default 0)")
    imp.add_argument("--alpha", type=_finite_float, default=10.0, help="the alpha --autocast compares at (default 10)")
    imp.add_argument("--quiet", action="store_true")

    rep = sub.add_parser("reproduce", help="re-run a table where its data is: ssd-cifar100-fullclass (the SSD "
                                           "paper's) or fashion-fullclass (every method on every Fashion-MNIST class)")
    rep.add_argument("experiment")
    rep.add_argument("--data-dir", help="folder with the dataset files")
    rep.add_argument("--device", default="auto")
    rep.add_argument("--model", help="another architecture than the paper's (e.g. smallcnn for a quick check)")
    rep.add_argument("--seed", type=_whole, default=0)
    rep.add_argument("--vit", metavar="FOLDER", help="also forget from a ViT fine-tuned on the dataset (a transformers "
                                                     "save_pretrained folder; needs the [hf] extra)")
    rep.add_argument("--classes", metavar="A,B", help="only these classes (names or indices, comma-separated)")
    rep.add_argument("--methods", metavar="A,B", help="only these methods (comma-separated)")
    rep.add_argument("--json", dest="json_path", metavar="FILE", help="also write the rows as JSON ('-': only JSON)")
    rep.add_argument("--quiet", action="store_true")

    sub.add_parser("list", help="list datasets, models and methods")
    return parser


AUTO = "auto"
PAPER = "paper"  # --alpha paper: the model's paper alpha (MethodSpec.config_for)
ADAPTIVE = {"ssd": "assd", "lfssd": "alfssd"}  # what --alpha auto runs


def _alpha(text: str) -> str | float:
    if text.strip().lower() in (AUTO, PAPER):
        return text.strip().lower()
    return _finite_float(text)
