"""``python -m tf_multvae.train``: train Mult-VAE^PR, Mult-DAE or CDAE.

    python -m tf_multvae.train --dataset ml-20m            # data/ml-20m
    python -m tf_multvae.train --dataset msd --model dae --data-dir data/msd
    python -m tf_multvae.train --dataset ml-1m --model cdae --cdae-heldout zero

Every preset value (``tf_multvae.config.PRESETS``) can be overridden by a
flag (``config.MODEL_FLAGS``, ``config.TRAIN_FLAGS``). The run directory
holds config.json, TensorBoard logs (``logs/``), a backup after every
epoch (``backup/``; the same command resumes from it), the best epoch's
weights by validation NDCG@100, the best model (``best.keras``) and
metrics.json with the test metrics of that model. The training itself is
``tf_multvae.training.loop.run``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from tf_multvae import cli
from tf_multvae import config as cfg

_HELP = {
    "hidden_dims": "e.g. 600 or 600,300",
    "mixed_precision": "bfloat16 (CPU) / float16 (GPU) matmuls; softmax, "
    "likelihood and KL stay float32",
    "log_every": "updates per TensorBoard write",
    "cdae_negative_weight": "CDAE: weight of an unclicked item in the "
    "square loss (1 on clicks)",
    "cdae_heldout": "CDAE: fit (V_u fitted on a held-out user's fold-in "
    "items) or zero (V_u = 0)",
    "cdae_fold_in_steps": "CDAE: gradient steps of that fit",
}


def _dims(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in text.split(",") if d.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{cfg.flag('hidden_dims')} takes comma-separated sizes, "
            f"not {text!r}"
        )


def _add_field_flags(p: argparse.ArgumentParser, fields, defaults) -> None:
    """One flag per config field, typed like the field's default."""
    for field, flag in fields.items():
        default = getattr(defaults, field)
        kwargs = {"dest": field, "help": _HELP.get(field)}
        if field == "likelihood":
            kwargs["choices"] = cfg.LIKELIHOODS
        elif field == "strategy":
            kwargs["choices"] = cfg.STRATEGIES
        elif isinstance(default, bool):
            kwargs.update(action=argparse.BooleanOptionalAction, default=None)
        elif isinstance(default, tuple):
            kwargs["type"] = _dims
        elif isinstance(default, float):
            kwargs["type"] = cli.finite_float  # NaN and infinities refused
        else:
            kwargs["type"] = type(default)
        p.add_argument(flag, **kwargs)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tf_multvae.train",
        description="Train Mult-VAE^PR / Mult-DAE (Liang et al., WWW 2018) "
        "or the CDAE baseline (Wu et al., WSDM 2016).",
    )
    p.add_argument("--dataset", required=True, choices=sorted(cfg.PRESETS))
    p.add_argument("--data-dir", help="prepared dataset (default data/NAME)")
    p.add_argument("--run-dir", help="output (default runs/NAME-MODEL)")
    p.add_argument("--model", choices=cfg.MODELS, default="vae")
    _add_field_flags(p, cfg.MODEL_FLAGS, cfg.ModelConfig())
    _add_field_flags(p, cfg.TRAIN_FLAGS, cfg.TrainConfig())
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="TensorFlow op determinism (reproducible, somewhat slower)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start over in a run directory that holds another run",
    )
    p.add_argument(
        "--grid",
        action="store_true",
        help="train every point of the model's hyperparameter grid (CDAE: "
        "--weight-decay over a log grid) in RUN_DIR/points/, and keep the "
        "best by validation NDCG@100 in RUN_DIR/best",
    )
    p.add_argument(
        "--export-dir",
        help="at the end, export the best model as a SavedModel for TF "
        "Serving into EXPORT_DIR/N (next version; python -m "
        "tf_multvae.serving.export)",
    )
    cli.add_verbose(p)
    return p.parse_args(argv)


def _given(args: argparse.Namespace, fields) -> dict:
    return {f: getattr(args, f) for f in fields if getattr(args, f) is not None}


def config_from_args(args: argparse.Namespace) -> cfg.RunConfig:
    """The dataset's preset, switched to the model asked for (the DAE's or
    CDAE's defaults), then each flag."""
    preset = cfg.preset(args.dataset, args.model)
    model = preset.model
    model = dataclasses.replace(model, **_given(args, cfg.MODEL_FLAGS))
    train = dataclasses.replace(preset.train, **_given(args, cfg.TRAIN_FLAGS))
    return cfg.RunConfig(args.dataset, model, train)


def train_grid(
    config: cfg.RunConfig,
    data_dir: str,
    run_dir: str,
    deterministic: bool = False,
    overwrite: bool = False,
) -> dict:
    """Trains every point of ``config``'s model grid (``--grid``).

    Each point is ``config`` with the point's values, trained by
    ``training.loop.run`` into RUN_DIR/points/NAME; the best by validation
    NDCG@100 is copied to RUN_DIR/best (``baselines.grid.run_grid``).

    Raises:
        ValueError: the model kind has no grid, or a grid dimension was
            set by flag.
    """
    from tf_multvae.baselines import grid
    from tf_multvae.training import loop

    def fit(values, point_dir):
        model = dataclasses.replace(config.model, **values)
        point = dataclasses.replace(config, model=model)
        return loop.run(point, data_dir, point_dir, deterministic)

    loop.check_trainable(data_dir)  # before the grid's directory is made
    return grid.run_grid(
        config.model.kind,
        data_dir,
        run_dir,
        overwrite=overwrite,
        fit=fit,
        base=config.to_json(),
    )


def _run_grid(args, config: cfg.RunConfig, data_dir: str, run_dir: str):
    from tf_multvae.baselines import grid

    varied = grid.GRIDS.get(config.model.kind, {})
    given = [f for f in varied if getattr(args, f, None) is not None]
    if given:
        return cli.fail(
            f"--grid varies {', '.join(cfg.flag(f) for f in given)}; do "
            "not also set it by flag"
        )
    result, code = cli.call(
        train_grid, config, data_dir, run_dir, args.deterministic,
        args.overwrite,
    )  # fmt: skip
    if code:
        return code
    print(grid.markdown(result))
    print(f"best point: {os.path.abspath(run_dir)}/{grid.BEST}")
    return 0


@cli.command("train")
def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    config, code = cli.call(config_from_args, args)
    if code:
        return code
    data_dir = args.data_dir or os.path.join("data", args.dataset)
    run_dir = args.run_dir or os.path.join(
        "runs", f"{args.dataset}-{config.model.kind}"
    )
    from tf_multvae.training import loop

    _, code = cli.call(cli.check_directory, args.export_dir, "--export-dir")
    if code:
        return code
    if args.grid:
        return _run_grid(args, config, data_dir, run_dir)
    result, code = cli.call(
        loop.run,
        config,
        data_dir,
        run_dir,
        args.deterministic,
        args.overwrite,
        export_dir=args.export_dir,
    )
    if code:
        return code
    test = result["test"]
    names = [name for name, value in test.items() if isinstance(value, dict)]
    names.sort(key=lambda name: not name.startswith("ndcg"))  # NDCG first
    print(
        f"best epoch {result['best_epoch']}; test users {test['users']}: "
        + ", ".join(
            f"{name} {test[name]['mean']:.4f} ± {test[name]['stderr']:.4f}"
            for name in names
        )
    )
    print(f"run directory: {os.path.abspath(run_dir)}")
    print(
        f"TensorBoard:   tensorboard --logdir {os.path.abspath(run_dir)}/logs"
    )
    if "saved_model" in result:
        print(f"SavedModel:    {os.path.abspath(result['saved_model'])}")
    return 0


if __name__ == "__main__":
    cli.quiet_process("train")
    sys.exit(cli.end_process(main()))
