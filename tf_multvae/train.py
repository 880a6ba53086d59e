"""``python -m tf_multvae.train``: train Mult-VAE^PR or Mult-DAE by the paper.

    python -m tf_multvae.train --dataset ml-20m            # data/ml-20m
    python -m tf_multvae.train --dataset msd --model dae --data-dir data/msd

Every preset value (``tf_multvae.config.PRESETS``) can be overridden by a
flag. The run directory holds config.json, TensorBoard logs (``logs/``),
a backup after every epoch (``backup/``; the same command resumes from it),
the best epoch's weights by validation NDCG@100, the best model
(``best.keras``) and metrics.json with the test metrics of that model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import sys
import time

from tf_multvae import config as cfg

# Flags named like the ModelConfig field they set.
_MODEL_FLAGS = (
    "likelihood",
    "anneal_cap",
    "total_anneal_steps",
    "latent_dim",
    "hidden_dims",
    "dropout",
    "weight_decay",
)
_TRAIN_FLAGS = {
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "learning_rate",
    "seed": "seed",
    "strategy": "strategy",
    "mixed_precision": "mixed_precision",
    "log_every": "log_every",
}


def _dims(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in text.split(",") if d.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--hidden-dims takes comma-separated sizes, not {text!r}"
        )


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tf_multvae.train",
        description="Train Mult-VAE^PR / Mult-DAE (Liang et al., WWW 2018).",
    )
    p.add_argument("--dataset", required=True, choices=sorted(cfg.PRESETS))
    p.add_argument("--data-dir", help="prepared dataset (default data/NAME)")
    p.add_argument("--run-dir", help="output (default runs/NAME-MODEL)")
    p.add_argument("--model", choices=cfg.MODELS, default="vae")
    p.add_argument("--likelihood")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--anneal-cap", type=float)
    p.add_argument("--total-anneal-steps", type=int)
    p.add_argument("--latent-dim", type=int)
    p.add_argument("--hidden-dims", type=_dims, help="e.g. 600 or 600,300")
    p.add_argument("--dropout", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--strategy", choices=cfg.STRATEGIES)
    p.add_argument(
        "--mixed-precision",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bfloat16 (CPU) / float16 (GPU) matmuls; softmax, likelihood "
        "and KL stay float32",
    )
    p.add_argument("--log-every", type=int, help="updates per TensorBoard write")
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
        "--export-dir",
        help="at the end, export the best model as a SavedModel for TF "
        "Serving into EXPORT_DIR/N (next version; python -m "
        "tf_multvae.export)",
    )
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> cfg.RunConfig:
    """The dataset's preset, switched to the DAE if asked, then each flag."""
    preset = cfg.PRESETS[args.dataset]
    model = preset.model
    if args.model == "dae":
        model = cfg.dae_defaults(model)
    model = dataclasses.replace(
        model,
        **{
            field: getattr(args, field)
            for field in _MODEL_FLAGS
            if getattr(args, field) is not None
        },
    )
    train = dataclasses.replace(
        preset.train,
        **{
            field: getattr(args, flag)
            for flag, field in _TRAIN_FLAGS.items()
            if getattr(args, flag) is not None
        },
    )
    return cfg.RunConfig(args.dataset, model, train)


def make_strategy(name: str):
    """The tf.distribute strategy for ``--strategy``."""
    import tensorflow as tf

    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else (
            tf.distribute.get_strategy()
        )
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        # All GPUs; without GPUs, all logical CPU devices (one unless
        # configured with tf.config.set_logical_device_configuration).
        devices = tf.config.list_logical_devices("GPU") or (
            tf.config.list_logical_devices("CPU")
        )
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"unknown --strategy {name!r}")


def _is_chief(strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )


def _prepare_run_dir(run_dir: str, resolved: dict, overwrite: bool) -> None:
    resolved = json.loads(json.dumps(resolved))  # tuples -> lists, as read
    path = os.path.join(run_dir, "config.json")
    if os.path.exists(path) and not overwrite:
        with open(path) as f:
            previous = json.load(f)
        if previous != resolved:
            changed = sorted(
                k for k in set(previous) | set(resolved)
                if previous.get(k) != resolved.get(k)
            )
            raise ValueError(
                f"--run-dir {run_dir} holds a run with another configuration "
                f"(differs in {', '.join(changed)}); pass --overwrite to "
                "start over there, or choose another --run-dir"
            )
    elif overwrite and os.path.exists(run_dir):
        shutil.rmtree(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    with open(path, "w") as f:
        json.dump(resolved, f, indent=2)


def build_compiled_model(config: cfg.RunConfig, n_items: int):
    """The model of ``config``, built and compiled with its learning rate.

    Call it under the strategy's scope. ``tuning/search.py`` builds its
    trial models here too, so a tuned configuration trains as it would here.
    """
    from tf_multvae.model import build_model
    from tf_multvae.model import compile_model

    m, t = config.model, config.train
    hparams = dict(
        hidden_dims=m.hidden_dims,
        latent_dim=m.latent_dim,
        dropout=m.dropout,
        likelihood=m.likelihood,
        seed=t.seed,
    )
    if m.kind == "vae":
        hparams.update(
            anneal_cap=m.anneal_cap, total_anneal_steps=m.total_anneal_steps
        )
    else:
        hparams.update(weight_decay=m.weight_decay)
    model = build_model(m.kind, n_items, **hparams)
    compile_model(model, t.learning_rate)
    return model


def fit_data(
    data_dir: str,
    train: cfg.TrainConfig,
    initial_epoch: int = 0,
    stacked: bool = False,
) -> dict:
    """The data arguments of ``model.fit``, as ``run`` trains.

    Training batches for epochs ``initial_epoch`` .. ``train.epochs - 1``,
    seeded per epoch, and one pass over the validation users after each
    epoch (which logs ``val_ndcg_at_100``).

    Args:
        stacked: validation batches as one tensor (``stack_eval_batch``),
            which MultiWorkerMirroredStrategy needs.
    """
    from tf_multvae import data
    from tf_multvae.model import stack_eval_batch

    train_ds = data.train_dataset(
        data_dir,
        train.batch_size,
        train.seed,
        epochs=(initial_epoch, train.epochs),
    )
    # Repeated, with validation_steps one pass: Keras keeps one validation
    # iterator for the whole fit (under a distribution strategy too).
    valid_ds = data.eval_dataset(data_dir, "validation", train.batch_size)
    if stacked:
        valid_ds = valid_ds.map(stack_eval_batch)
    return dict(
        x=train_ds,
        steps_per_epoch=data.steps_per_epoch(data_dir, train.batch_size),
        validation_data=valid_ds.repeat(),
        validation_steps=math.ceil(
            data.count_users(data_dir, "validation") / train.batch_size
        ),
        shuffle=False,  # the dataset shuffles, seeded per epoch
    )


def run(
    config: cfg.RunConfig,
    data_dir: str,
    run_dir: str,
    deterministic: bool = False,
    overwrite: bool = False,
    verbose: int | str = "auto",
    export_dir: str | None = None,
) -> dict:
    """Trains, keeps the best epoch, evaluates it on the test users.

    With ``export_dir``, the best model is then exported there as the
    next SavedModel version (``tf_multvae.export``).

    Returns:
        The contents of metrics.json (plus ``saved_model``, the exported
        version directory, with ``export_dir``).

    Raises:
        FileNotFoundError, ValueError: bad data directory or arguments.
        FloatingPointError: the loss became NaN (the best weights so far
            are kept and evaluated first).
    """
    import keras
    import tensorflow as tf

    from tf_multvae import callbacks as cb
    from tf_multvae import data
    from tf_multvae import evaluation

    info = data.load_info(data_dir)
    t = config.train
    m = config.model
    strategy = make_strategy(t.strategy)
    keras.utils.set_random_seed(t.seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    if t.mixed_precision:
        gpu = bool(tf.config.list_logical_devices("GPU"))
        keras.mixed_precision.set_global_policy(
            "mixed_float16" if gpu else "mixed_bfloat16"
        )
    chief = _is_chief(strategy)
    if not chief:  # other workers write their (identical) state aside
        run_dir = os.path.join(run_dir, f".worker-{strategy.cluster_resolver.task_id}")
    resolved = {
        **config.to_json(),
        "data_dir": os.path.abspath(data_dir),
        "n_items": info.n_items,
        "deterministic": deterministic,
    }
    _prepare_run_dir(run_dir, resolved, overwrite)

    with strategy.scope():
        model = build_compiled_model(config, info.n_items)
        model.optimizer.build(model.trainable_variables)
    guard = cb.NanGuard()
    backup = cb.EpochBackup(os.path.join(run_dir, "backup"), model, guard)
    initial_epoch = backup.restore()
    anneal = (m.anneal_cap, m.total_anneal_steps) if m.kind == "vae" else None
    callbacks = [
        guard,
        cb.StepScalars(os.path.join(run_dir, "logs"), t.log_every, anneal),
        cb.BestWeights(run_dir, initial_epoch, guard),
        backup,  # last: a backup means every other callback has its state
    ]
    multi_worker = isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    )
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2
    started = time.time()
    if initial_epoch < t.epochs:
        model.fit(
            **fit_data(data_dir, t, initial_epoch, stacked=multi_worker),
            epochs=t.epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=verbose,
        )
    seconds = time.time() - started
    state = callbacks[2].state
    best_path = os.path.join(run_dir, cb.BEST_WEIGHTS)
    if not os.path.exists(best_path):
        why = "training produced no finite validation NDCG@100"
        if guard.stopped_at is not None:
            epoch, step = guard.stopped_at
            why = (
                f"the loss became NaN in epoch {epoch + 1} (update {step}), "
                "before any epoch had a finite validation NDCG@100"
            )
        raise FloatingPointError(f"{why}; nothing to keep")
    model.load_weights(best_path)
    test = evaluation.evaluate(model, data_dir, "test", t.batch_size)
    result = {
        "test": test,
        "best_epoch": state["best_epoch"],
        "validation": {
            evaluation.report_name(k): v for k, v in state["history"].items()
        },
        "train_seconds_this_process": round(seconds, 1),
        "resumed_from_epoch": initial_epoch,
    }
    if guard.stopped_at is not None:
        epoch, step = guard.stopped_at
        result["stopped"] = (
            f"the loss became NaN in epoch {epoch + 1} (update {step}); "
            f"kept the best weights so far (epoch {state['best_epoch']})"
        )
    if chief:
        model.save(os.path.join(run_dir, "best.keras"))
        with open(os.path.join(run_dir, "metrics.json"), "w") as f:
            json.dump(result, f, indent=2)
        if export_dir:
            from tf_multvae import export

            result["saved_model"] = export.export_run(run_dir, export_dir)
    if guard.stopped_at is not None:
        raise FloatingPointError(result["stopped"])
    return result


def call_for_cli(fn, *args, **kwargs) -> tuple[object, int]:
    """``(fn(*args, **kwargs), 0)``, or ``(None, exit code)`` on an error.

    The commands that train share these exit codes: 2 for bad arguments
    or data (FileNotFoundError, ValueError), 1 when the loss became NaN
    (FloatingPointError). The error's message goes to stderr.
    """
    try:
        return fn(*args, **kwargs), 0
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return None, 2
    except FloatingPointError as err:
        print(f"error: {err}", file=sys.stderr)
        return None, 1


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        config = config_from_args(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    data_dir = args.data_dir or os.path.join("data", args.dataset)
    run_dir = args.run_dir or os.path.join(
        "runs", f"{args.dataset}-{config.model.kind}"
    )
    result, code = call_for_cli(
        run, config, data_dir, run_dir, args.deterministic, args.overwrite,
        export_dir=args.export_dir,
    )
    if code:
        return code
    test = result["test"]
    print(
        f"best epoch {result['best_epoch']}; test users {test['users']}: "
        + ", ".join(
            f"{name} {test[name]['mean']:.4f} ± {test[name]['stderr']:.4f}"
            for name in ("ndcg@100", "recall@20", "recall@50")
        )
    )
    print(f"run directory: {os.path.abspath(run_dir)}")
    print(f"TensorBoard:   tensorboard --logdir {os.path.abspath(run_dir)}/logs")
    if "saved_model" in result:
        print(f"SavedModel:    {os.path.abspath(result['saved_model'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
