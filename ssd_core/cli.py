"""Command line: ``python -m ssd_core unlearn|audit|importance|reproduce|train|list ...``.

Bad arguments exit with status 2 and one sentence on stderr (no traceback); a progress bar goes
to stderr. ``unlearn`` prints a short human summary; ``--json FILE`` also writes the full result as
JSON, and ``--json -`` prints the JSON to stdout instead of the summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

from .errors import InputError

EXIT_BAD_INPUT = 2


class ProgressBar:
    """A one-line progress bar on stderr (silent when stderr is not a terminal and quiet is set)."""

    def __init__(self, enabled: bool = True, width: int = 30) -> None:
        self.enabled = enabled
        self.width = width
        self.last = 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, fraction: float, message: str) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if fraction < 1.0 and now - self.last < 0.1:
            return
        self.last = now
        filled = int(round(fraction * self.width))
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {fraction * 100:5.1f}% {message}"
        if self.tty:
            sys.stderr.write("\r" + line[:120].ljust(120))
            if fraction >= 1.0:
                sys.stderr.write("\n")
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


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
    unlearn.add_argument("--save-model", help="write the unlearned model to PATH.safetensors + PATH.json")
    unlearn.add_argument("--stream-dir", metavar="DIR",
                         help="training images in DIR/<class>/ read batch by batch (memory independent of their "
                              "number): ssd, lfssd, assd or alfssd with --forget-class, --checkpoint and "
                              "--checkpoint-config")
    unlearn.add_argument("--stream-test-dir", metavar="DIR", help="test images in DIR/<class>/, for the accuracies")
    unlearn.add_argument("--batch-size", type=_whole, default=64, help="importance batch size (with --stream-dir)")
    unlearn.add_argument("--workers", type=_whole, default=0, help="decoding processes (with --stream-dir)")

    audit = sub.add_parser("audit", help="did it really forget? audit methods against the retrained model")
    _add_run_options(audit)
    audit.add_argument("--method", action="append", dest="methods", metavar="NAME",
                       help="a method to audit (repeatable; default: ssd with auto alpha)")
    audit.add_argument("--seeds", type=_whole, default=0, metavar="S",
                       help="also run each method over S seeds and report means with 95%% intervals (0: one run)")
    audit.add_argument("--shadows", type=_whole, default=None, metavar="K",
                       help="LiRA shadow models (even; 0: no per-example attack; default: 16, or 8 shorter-trained "
                       "ones from 20,000 training images on); built once and cached when missing")
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
    imp.add_argument("--batch-size", type=_whole, default=64)
    imp.add_argument("--seed", type=_whole, default=0)
    imp.add_argument("--device", default="auto")
    imp.add_argument("--data-dir")
    imp.add_argument("--stream-dir", metavar="DIR",
                     help="an image folder (DIR/<class>/*.png) read batch by batch instead of loaded whole; needs "
                          "--checkpoint, --checkpoint-config and --out")
    imp.add_argument("--workers", type=_whole, default=0, help="decoding processes for --stream-dir")
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


def _method_and_params(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The method to run and its options: ssd/lfssd with no alpha (or 'auto') run their adaptive
    form; --guard asks the SSD family to apply the guard's correction."""
    params = _params(args)
    method = args.method
    if params.get("alpha") == PAPER and method not in ADAPTIVE.values():  # assd/alfssd: the error below
        if method not in ADAPTIVE:
            raise InputError(f"--alpha paper is for ssd and lfssd, not {method}.")
        params.pop("alpha")  # the run's config takes the model's paper alpha (MethodSpec.config_for)
    elif method in ADAPTIVE and params.get("alpha", AUTO) == AUTO:
        method = ADAPTIVE[method]
        params.pop("alpha", None)
    elif method in ADAPTIVE.values() and "alpha" in params:
        if params["alpha"] != AUTO:
            raise InputError(f"{method} chooses alpha itself; use --method {_fixed(method)} --alpha "
                             f"{params['alpha']} for a fixed alpha.")
        params.pop("alpha")
    elif params.get("alpha") == AUTO:
        raise InputError(f"--alpha auto is for the SSD family (ssd, lfssd), not {method}.")
    if args.guard:
        if method not in (*ADAPTIVE, *ADAPTIVE.values()):
            raise InputError(f"--guard is for the SSD family (ssd, lfssd, assd, alfssd), not {method}.")
        params["guard"] = "fix"
    return method, params


def _fixed(adaptive: str) -> str:
    return next(fixed for fixed, name in ADAPTIVE.items() if name == adaptive)


def _request(args: argparse.Namespace, seed: int):
    from .data import ForgetRequest, parse_indices

    if args.forget_subclass is not None:
        return ForgetRequest("subclass", target=args.forget_subclass)
    if args.forget_random is not None:
        return ForgetRequest("random", k=args.forget_random, seed=seed)
    if args.forget_indices is not None:
        return ForgetRequest("indices", indices=parse_indices(args.forget_indices))
    if args.forget_class is None:
        raise InputError("Say what to forget: --forget-class, --forget-subclass, --forget-random or --forget-indices.")
    from .indices import is_whole_number

    target: int | str = args.forget_class.strip()
    if is_whole_number(str(target)) and len(str(target)) <= 9:
        target = int(target)
    return ForgetRequest("class", target=target)


def _model(args: argparse.Namespace) -> str:
    from .models import default_model_for, register_factory

    factory = getattr(args, "model_factory", None)
    if factory:
        if args.model and args.model != factory:
            raise InputError("Give --model or --model-factory, not both.")
        return register_factory(factory)
    return args.model or default_model_for(args.dataset)


def _params(args: argparse.Namespace) -> dict[str, Any]:
    from .indices import parse_float

    params: dict[str, Any] = {}
    for item in args.param:
        if "=" not in item:
            raise InputError(f"--param expects NAME=VALUE; got '{item[:40]}'.")
        name, value = item.split("=", 1)
        name = name.strip().replace("-", "_")
        params["lam" if name == "lambda" else name] = value.strip()
    if args.alpha is not None:
        params["alpha"] = args.alpha
    if args.lam is not None:
        params["lam"] = args.lam
    if str(params.get("alpha", "")).strip().lower() in (AUTO, PAPER):
        params["alpha"] = str(params["alpha"]).strip().lower()
    elif "alpha" in params and parse_float(params["alpha"], "alpha") <= 0:
        raise InputError(f"alpha must be a positive number; got {params['alpha']}.")
    if "lam" in params and parse_float(params["lam"], "lambda") < 0:
        raise InputError(f"lambda must be zero or positive; got {params['lam']}.")
    return params


def _check_writable(path_stem: str, what: str = "the model") -> None:
    """Refuse an output path (--save-model, --out, --json FILE) before the run when its folder cannot
    be written, not after the run."""
    from pathlib import Path

    folder = Path(path_stem).expanduser().parent
    try:
        exists = folder.is_dir()
    except OSError as exc:  # a name the system refuses (too long)
        raise InputError(f"Cannot save {what}: '{str(folder)[:60]}…' is not a usable folder ({exc.strerror}).") from None
    if not exists:
        raise InputError(f"Cannot save {what}: the folder '{str(folder)[:120]}' does not exist.")
    if not os.access(folder, os.W_OK):
        raise InputError(f"Cannot save {what}: the folder '{str(folder)[:120]}' is not writable.")


def _emit(result: dict[str, Any], summary: Any, json_path: str | None, what: str) -> int:
    """Print the summary (``summary()``), or with ``--json -`` only the JSON; ``--json FILE`` also writes it."""
    payload = json.dumps(result, indent=2)
    if json_path == "-":
        print(payload)
        return 0
    if json_path:
        with open(json_path, "w") as fh:
            fh.write(payload)
    print(summary())
    if json_path:
        print(f"{what} (JSON): {json_path}")
    return 0


def _cmd_unlearn(args: argparse.Namespace) -> int:
    from .experiment import ExperimentConfig, json_ready, run_experiment, summary_text

    if args.save_model:
        _check_writable(args.save_model)
    if args.json_path and args.json_path != "-":
        _check_writable(args.json_path, "the JSON")
    if args.stream_dir:
        return _streamed_unlearn(args)
    method, params = _method_and_params(args)
    config = ExperimentConfig(
        dataset=args.dataset,
        model=_model(args),
        request=_request(args, args.seed),
        method=method,
        params=params,
        seed=args.seed,
        device=args.device,
        data_dir=args.data_dir,
        download=args.download,
        checkpoint=args.checkpoint,
        checkpoint_config=args.checkpoint_config,
    )
    result = run_experiment(config, progress=ProgressBar(enabled=not args.quiet))
    if args.save_model:
        from .checkpoints import config_for_dataset, save_model
        from .data import load_dataset

        dataset = load_dataset(args.dataset, args.data_dir)
        save_model(result["_model"], config_for_dataset(config.model, dataset), args.save_model, {"method": method})
    return _emit(json_ready(result), lambda: summary_text(result), args.json_path, "Full result")


def _streamed_unlearn(args: argparse.Namespace) -> int:
    """``unlearn --stream-dir``: the SSD family over image folders read batch by batch."""
    from .checkpoints import load_model, read_model_config, save_model
    from .data.streaming import StreamingImages
    from .experiment import percent
    from .models import resolve_device
    from .streamed import unlearn_streamed

    if not (args.checkpoint and args.checkpoint_config):
        raise InputError("--stream-dir needs --checkpoint and --checkpoint-config (the model to unlearn).")
    if args.forget_class is None:
        raise InputError("--stream-dir forgets a class: give --forget-class (an index or a class folder's name).")
    method = args.method
    auto = args.alpha in (None, AUTO)
    if auto and method in ADAPTIVE:
        method = ADAPTIVE[method]
    config = read_model_config(args.checkpoint_config)
    device = resolve_device(args.device)
    model = load_model(args.checkpoint, config).to(device).eval()
    train = StreamingImages.folder(args.stream_dir, image_size=config.input_shape[1])
    test = StreamingImages.folder(args.stream_test_dir, image_size=config.input_shape[1]) if args.stream_test_dir else None
    if len(train.classes) != config.num_classes:
        raise InputError(f"The folder has {len(train.classes)} classes but the model has {config.num_classes}.")
    target = args.forget_class
    if target in train.classes:
        forget_class = train.classes.index(target)
    else:
        from .indices import parse_whole_number

        forget_class = parse_whole_number(target, "forget class", maximum=len(train.classes) - 1)
    result = unlearn_streamed(model, train, forget_class, method, test=test,
                              alpha=None if auto or method in ADAPTIVE.values() else float(args.alpha),
                              lam=1.0 if args.lam is None else args.lam, batch_size=args.batch_size,
                              workers=args.workers, device=device, seed=args.seed,
                              progress=ProgressBar(enabled=not args.quiet))
    if args.save_model:
        save_model(result.model, config, args.save_model, {"method": method, "alpha": result.alpha})
    out = {"dataset": str(args.stream_dir), "forget_class": train.classes[forget_class], **result.to_dict()}

    def summary() -> str:
        lines = [f"{method} on streamed {out['n_train']:,} images, forgetting '{out['forget_class']}' "
                 f"({out['n_forget']:,} images): alpha {result.alpha:.4g}, {result.report.total_selected:,} "
                 "parameters dampened."]
        if result.before is not None and result.after is not None:
            lines.append(f"Forget (test) {percent(result.before.forget_test_acc)} -> {percent(result.after.forget_test_acc)}; "
                         f"retain (test) {percent(result.before.retain_test_acc)} -> {percent(result.after.retain_test_acc)}.")
        return "\n".join(lines)

    return _emit(out, summary, args.json_path, "Full result")


def _cmd_audit(args: argparse.Namespace) -> int:
    from .audit.runner import AuditRun, run_audit
    from .audit.text import audit_summary
    from .experiment import ExperimentConfig

    if args.json_path and args.json_path != "-":
        _check_writable(args.json_path, "the JSON")
    if args.shadows is not None and args.shadows % 2:
        raise InputError(f"--shadows must be even (each image is in half of them); got {args.shadows}.")
    if args.seeds == 1:
        args.seeds = 0
    methods: dict[str, dict[str, Any]] = {}
    for name in args.methods or ["ssd"]:
        method, params = _method_and_params(argparse.Namespace(**{**vars(args), "method": name}))
        methods[method] = params
    config = ExperimentConfig(dataset=args.dataset, model=_model(args), request=_request(args, args.seed),
                              seed=args.seed, device=args.device, data_dir=args.data_dir, download=args.download,
                              checkpoint=args.checkpoint, checkpoint_config=args.checkpoint_config)
    run = AuditRun(config, methods, seeds=args.seeds, shadows=args.shadows,
                   build_missing_shadows=not args.no_build_shadows)
    from .experiment import json_ready

    result = json_ready(run_audit(run, progress=ProgressBar(enabled=not args.quiet)))
    return _emit(result, lambda: audit_summary(result), args.json_path, "Full audit")


def _cmd_train(args: argparse.Namespace) -> int:
    from .checkpoints import config_for_dataset, save_model
    from .data import load_dataset
    from .train import load_or_train

    if args.out:
        _check_writable(args.out)
    dataset = load_dataset(args.dataset, args.data_dir, args.download)
    model = _model(args)
    trained = load_or_train(dataset, model, seed=args.seed, device=args.device, progress=ProgressBar(not args.quiet))
    if args.out:
        save_model(trained.model, config_for_dataset(model, dataset), args.out, {"test_acc": trained.test_acc})
    print(json.dumps({"dataset": dataset.name, "model": model, "seed": args.seed, "test_acc": trained.test_acc,
                      "source": trained.source, "train_seconds": trained.seconds}))
    return 0


def _cmd_importance(args: argparse.Namespace) -> int:
    """I_D over the whole training set, across the processes torchrun started (gloo on CPU, NCCL on
    GPUs) or in this process alone; rank 0 writes it where the CLI and the dashboard look first."""
    import torch
    import torch.distributed as dist

    from .data import load_dataset
    from .importance import default_cache, distributed_importance
    from .models import resolve_device
    from .train import load_or_train

    if args.stream_dir:
        return _streamed_importance(args)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(args.device)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
        torch.cuda.set_device(device)
    started = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        started = True
    try:
        rank = dist.get_rank() if dist.is_initialized() else 0
        dataset = load_dataset(args.dataset, args.data_dir)
        model_name = _model(args)
        model = load_or_train(dataset, model_name, seed=args.seed, device=device).model.to(device).eval()
        start = time.perf_counter()
        progress = ProgressBar(enabled=not args.quiet and rank == 0)
        importance = distributed_importance(model, dataset.train(), args.estimator, args.batch_size, device, progress)
        seconds = time.perf_counter() - start
        compared = _autocast_comparison(args, model, dataset, importance, device) if args.autocast else None
        if rank == 0:
            cache = default_cache()
            key = cache.key(model, f"{dataset.fingerprint()}-train", args.estimator, args.batch_size)
            path = cache.store(key, importance)
            print(json.dumps({"dataset": dataset.name, "model": model_name, "estimator": args.estimator,
                              "batch_size": args.batch_size, "world_size": world, "seconds": seconds,
                              "images_per_s": len(dataset.train_y) / seconds if seconds else None,
                              "cache_file": str(path) if path else None,
                              **({"autocast": compared} if compared else {})}))
    finally:
        if started:
            dist.destroy_process_group()
    return 0


def _autocast_comparison(args: argparse.Namespace, model: Any, dataset: Any, full_fp32: dict, device: Any) -> dict:
    """I_D again under ``--autocast``, timed, and SSD's selection for ``--forget-class`` at ``--alpha``
    under both precisions: how many parameters change (every rank takes part; rank 0 prints)."""
    from .dampening import selection_changes
    from .data import ForgetRequest, make_split
    from .importance import compute_importance, distributed_importance

    if not 0 <= args.forget_class < dataset.num_classes:
        raise InputError(f"--forget-class must be between 0 and {dataset.num_classes - 1}.")
    start = time.perf_counter()
    full_low = distributed_importance(model, dataset.train(), args.estimator, args.batch_size, device,
                                      autocast=args.autocast)
    seconds = time.perf_counter() - start
    forget = make_split(dataset, ForgetRequest("class", args.forget_class)).forget_train
    forget_fp32 = compute_importance(model, forget, args.estimator, args.batch_size, device)
    forget_low = compute_importance(model, forget, args.estimator, args.batch_size, device, autocast=args.autocast)
    changes = selection_changes((full_fp32, forget_fp32), (full_low, forget_low), args.alpha)
    worst = max(float((full_low[n] - full_fp32[n]).abs().sum() / full_fp32[n].abs().sum().clamp_min(1e-30))
                for n in full_fp32)
    return {"dtype": args.autocast, "seconds": seconds,
            "images_per_s": len(dataset.train_y) / seconds if seconds else None,
            "forget_class": args.forget_class, "alpha": args.alpha, **changes.to_dict(),
            "largest_relative_difference_of_a_layers_I_D": worst}


def _streamed_importance(args: argparse.Namespace) -> int:
    """I_D over an image folder read batch by batch (memory independent of the number of images)."""
    from pathlib import Path

    from safetensors.torch import save_file

    from .checkpoints import load_model, read_model_config
    from .data.streaming import StreamingImages, stream
    from .importance import importance_from_loader
    from .models import resolve_device

    if not (args.checkpoint and args.checkpoint_config and args.out):
        raise InputError("--stream-dir needs --checkpoint, --checkpoint-config and --out.")
    _check_writable(args.out, "the importance")
    config = read_model_config(args.checkpoint_config)
    device = resolve_device(args.device)
    model = load_model(args.checkpoint, config).to(device).eval()
    images = StreamingImages.folder(args.stream_dir, image_size=config.input_shape[1])
    if len(images.classes) != config.num_classes:
        raise InputError(f"The folder has {len(images.classes)} classes but the model has {config.num_classes}.")
    start = time.perf_counter()
    importance = importance_from_loader(model, stream(images, args.batch_size, args.workers), args.estimator, device,
                                        ProgressBar(enabled=not args.quiet))
    seconds = time.perf_counter() - start
    out = Path(args.out).with_suffix(".safetensors")
    save_file({k: v.detach().cpu().contiguous() for k, v in importance.items()}, str(out))
    print(json.dumps({"images": len(images), "estimator": args.estimator, "batch_size": args.batch_size,
                      "seconds": seconds, "images_per_s": len(images) / seconds if seconds else None,
                      "out": str(out)}))
    return 0


def _names(text: str | None) -> list[str] | None:
    """A comma-separated list (None when not given)."""
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from .reproduce import reproduce, table_text

    if args.json_path and args.json_path != "-":
        _check_writable(args.json_path, "the JSON")
    result = reproduce(args.experiment, data_dir=args.data_dir, device=args.device, model=args.model, seed=args.seed,
                       vit=args.vit, classes=_names(args.classes), methods=_names(args.methods),
                       progress=ProgressBar(enabled=not args.quiet))
    return _emit(result, lambda: table_text(result), args.json_path, "Rows")


def _cmd_list(_: argparse.Namespace) -> int:
    from .data import available_datasets
    from .methods import available_methods
    from .models import available_models

    print(
        json.dumps(
            {
                "datasets": {name: spec.label for name, spec in available_datasets().items()},
                "models": {name: spec.description for name, spec in available_models().items()},
                "methods": {name: spec.description for name, spec in available_methods().items()},
            },
            indent=2,
        )
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: sys.argv); returns the exit status (2 for bad input)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        args = build_parser().parse_args(argv)
        if args.plugin:
            from .methods import load_plugin

            for path in args.plugin:
                load_plugin(path)
        handler = {"unlearn": _cmd_unlearn, "audit": _cmd_audit, "importance": _cmd_importance, "train": _cmd_train,
                   "reproduce": _cmd_reproduce, "list": _cmd_list}[args.command]
        return handler(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: the run needed more memory than this machine has; try smaller data or a smaller model.",
              file=sys.stderr)
        return 1
    except Exception as exc:  # a bug, not bad input: one line, the traceback on request
        from .settings import settings

        if settings().debug:
            raise
        print(f"error: unexpected {type(exc).__name__}: {str(exc)[:200]} (set UNLEARNING_LAB_DEBUG=1 for the "
              "traceback).", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
