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
from typing import Any

from .cli_args import ADAPTIVE, AUTO, PAPER, build_parser
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
        eval_sample=args.eval_sample,
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
    if args.seeds == 1:
        args.seeds = 0
    if args.train_seeds == 1:
        args.train_seeds = 0
    methods: dict[str, dict[str, Any]] = {}
    for name in args.methods or ["ssd"]:
        method, params = _method_and_params(argparse.Namespace(**{**vars(args), "method": name}))
        methods[method] = params
    config = ExperimentConfig(dataset=args.dataset, model=_model(args), request=_request(args, args.seed),
                              seed=args.seed, device=args.device, data_dir=args.data_dir, download=args.download,
                              checkpoint=args.checkpoint, checkpoint_config=args.checkpoint_config)
    from .audit import AuditConfig

    run = AuditRun(config, methods, seeds=args.seeds, train_seeds=args.train_seeds, shadows=args.shadows,
                   build_missing_shadows=not args.no_build_shadows, audit=AuditConfig(embedding=args.embedding))
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
