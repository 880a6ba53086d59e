"""Training a configuration by the paper's protocol, as a library.

:func:`run` trains, keeps the best epoch by validation NDCG@100 (under
the leave-one-out protocol NDCG@10 over the candidates, or the last epoch
of a fixed count where the dataset has no validation users) and
evaluates it on the test users, writing the run directory
(docs/design.md, "Run directories"). :func:`build_compiled_model` and
:func:`fit_data` are the pieces the search (``tuning/``) trains its
trials with, so a tuned configuration trains exactly as here.
"""

from __future__ import annotations

import math
import os
import sys
import time

from tf_multvae import config as cfg
from tf_multvae import rundir


def build_compiled_model(
    config: cfg.RunConfig,
    n_items: int,
    n_users: int | None = None,
    protocol: str | None = None,
):
    """The model of ``config``, built and compiled with its learning rate.

    Call it under the strategy's scope. ``n_users``: the training users,
    which a CDAE (one vector per training user) needs; ``protocol``: the
    dataset's (``DatasetInfo.protocol``; None: strong generalization),
    which decides the metrics of its evaluation.
    """
    from tf_multvae import features
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
    if m.kind == "cdae":
        if n_users is None:
            raise ValueError("a CDAE needs n_users, its training users")
        hparams = dict(
            n_users=n_users,
            latent_dim=m.latent_dim,
            dropout=m.dropout,
            negative_weight=m.cdae_negative_weight,
            weight_decay=m.weight_decay,
            heldout=m.cdae_heldout,
            fold_in_steps=m.cdae_fold_in_steps,
            seed=t.seed,
        )
    elif m.kind == "vae":
        hparams.update(
            anneal_cap=m.anneal_cap, total_anneal_steps=m.total_anneal_steps
        )
    else:
        hparams.update(weight_decay=m.weight_decay)
    hparams["protocol"] = protocol or features.STRONG_GENERALIZATION
    model = build_model(m.kind, n_items, **hparams)
    compile_model(model, t.learning_rate)
    return model


def fit_data(
    data_dir: str,
    train: cfg.TrainConfig,
    initial_epoch: int = 0,
    stacked: bool = False,
    with_user_index: bool = False,
) -> dict:
    """The data arguments of ``model.fit``, as :func:`run` trains.

    Training batches for epochs ``initial_epoch`` .. ``train.epochs - 1``,
    seeded per epoch, and one pass over the validation users after each
    epoch (which logs ``val_ndcg_at_100``, or ``val_ndcg_at_10`` under
    leave-one-out); none where the dataset has no validation users.

    Args:
        stacked: validation batches as one tensor (``stack_eval_batch``),
            which MultiWorkerMirroredStrategy needs.
        with_user_index: training batches say which user each row is
            (``data.train_dataset``; CDAE's per-user vectors).
    """
    from tf_multvae import data
    from tf_multvae import datadir
    from tf_multvae.model import stack_eval_batch

    train_ds = data.train_dataset(
        data_dir,
        train.batch_size,
        train.seed,
        epochs=(initial_epoch, train.epochs),
        with_user_index=with_user_index,
    )
    out = dict(
        x=train_ds,
        steps_per_epoch=data.steps_per_epoch(data_dir, train.batch_size),
        shuffle=False,  # the dataset shuffles, seeded per epoch
    )
    n_validation = datadir.count_users(data_dir, "validation")
    if not n_validation:
        return out
    # Repeated, with validation_steps one pass: Keras keeps one validation
    # iterator for the whole fit (under a distribution strategy too).
    valid_ds = data.eval_dataset(data_dir, "validation", train.batch_size)
    if stacked:
        valid_ds = valid_ds.map(stack_eval_batch)
    return dict(
        out,
        validation_data=valid_ds.repeat(),
        validation_steps=math.ceil(n_validation / train.batch_size),
    )


def _set_up(config: cfg.RunConfig, deterministic: bool):
    """Seeds, op determinism and the precision policy; the strategy."""
    import keras
    import tensorflow as tf

    from tf_multvae.training.strategy import make_strategy

    t = config.train
    strategy = make_strategy(t.strategy)
    keras.utils.set_random_seed(t.seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    if t.mixed_precision:
        gpu = bool(tf.config.list_logical_devices("GPU"))
        keras.mixed_precision.set_global_policy(
            "mixed_float16" if gpu else "mixed_bfloat16"
        )
    return strategy


def _nan_message(guard, best_epoch=None, selection="NDCG@100") -> str:
    epoch, step = guard.stopped_at
    where = f"the loss became NaN in epoch {epoch + 1} (update {step})"
    if best_epoch is None:
        return (
            f"{where}, before any epoch had a finite validation "
            f"{selection}; nothing to keep"
        )
    return f"{where}; kept the best weights so far (epoch {best_epoch})"


def check_trainable(data_dir: str) -> None:
    """Fails unless data_dir is a prepared dataset with training users.

    Raises:
        FileNotFoundError, ValueError: naming data_dir.
    """
    from tf_multvae import datadir

    if datadir.count_users(data_dir, "train") < 1:
        raise ValueError(f"{data_dir} has no training users to train on")


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

    The run directory gets config.json first (a directory holding another
    configuration is refused, see ``rundir.prepare``), a backup after every
    epoch (the same call resumes from it), TensorBoard logs, the best
    model and metrics.json. With ``export_dir``, the chief then exports
    the best model there as the next SavedModel version
    (``tf_multvae.serving.export``).

    Returns:
        The contents of metrics.json (plus ``saved_model``, the exported
        version directory, with ``export_dir``).

    Raises:
        FileNotFoundError, ValueError: bad data directory or arguments;
            a shard found corrupt as it is read
            (``datadir.CorruptShard``) leaves the run directory as it
            was.
        FloatingPointError: the loss became NaN (the best weights so far
            are kept and evaluated first).
    """
    from tf_multvae import datadir

    args = (deterministic, overwrite, verbose, export_dir)
    with rundir.unchanged_on(run_dir, (datadir.CorruptShard,)):
        with datadir.reading(data_dir):
            return _run(config, data_dir, run_dir, *args)


def _run(
    config, data_dir, run_dir, deterministic, overwrite, verbose, export_dir
):
    import tensorflow as tf

    from tf_multvae import datadir
    from tf_multvae import metrics
    from tf_multvae.reports import evaluation
    from tf_multvae.training import callbacks as cb
    from tf_multvae.training.strategy import is_chief

    info = datadir.load_info(data_dir)
    check_trainable(data_dir)  # before anything is written
    t, m = config.train, config.model
    strategy = _set_up(config, deterministic)
    chief = is_chief(strategy)
    if not chief:  # other workers write their (identical) state aside
        task = strategy.cluster_resolver.task_id
        run_dir = os.path.join(run_dir, f".worker-{task}")
    resolved = {
        **config.to_json(),
        "data_dir": os.path.abspath(data_dir),
        "n_items": info.n_items,
        "deterministic": deterministic,
        rundir.FINGERPRINT: datadir.fingerprint(data_dir),
    }
    rundir.prepare(run_dir, resolved, overwrite)
    left = rundir.remove_leftovers(run_dir) if chief else []
    if left:
        print(
            f"removed {len(left)} temporary file(s) an interrupted run left: "
            + ", ".join(left),
            file=sys.stderr,
            flush=True,
        )

    with strategy.scope():
        n_users = datadir.count_users(data_dir, "train")
        model = build_compiled_model(
            config, info.n_items, n_users, info.protocol
        )
        model.optimizer.build(model.trainable_variables)
    guard = cb.NanGuard()
    backup = cb.EpochBackup(os.path.join(run_dir, rundir.BACKUP), model, guard)
    initial_epoch = backup.restore()
    if initial_epoch and chief:
        print(
            f"resuming after epoch {initial_epoch} from "
            f"{os.path.join(run_dir, rundir.BACKUP)}",
            file=sys.stderr,
            flush=True,
        )
    anneal = (m.anneal_cap, m.total_anneal_steps) if m.kind == "vae" else None
    selection = metrics.selection_metric(info.protocol)
    validates = datadir.count_users(data_dir, "validation") > 0
    best = cb.BestWeights(
        run_dir,
        initial_epoch,
        guard,
        cb.VAL + selection if validates else None,
    )
    label = metrics.label(selection)
    callbacks = [
        guard,
        cb.StepScalars(os.path.join(run_dir, rundir.LOGS), t.log_every, anneal),
        best,
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
            **fit_data(
                data_dir,
                t,
                initial_epoch,
                stacked=multi_worker,
                with_user_index=m.kind == "cdae",
            ),
            epochs=t.epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=verbose,
        )
    seconds = time.time() - started
    best_path = os.path.join(run_dir, rundir.BEST_WEIGHTS)
    if not os.path.exists(best_path):
        if guard.stopped_at is not None:
            raise FloatingPointError(_nan_message(guard, None, label))
        raise FloatingPointError(
            f"training produced no finite validation {label}; nothing to keep"
        )
    model.load_weights(best_path)
    result = {
        "test": evaluation.evaluate(model, data_dir, "test", t.batch_size),
        "best_epoch": best.state["best_epoch"],
        "validation": best.state["history"],
        "train_seconds_this_process": round(seconds, 1),
        "resumed_from_epoch": initial_epoch,
    }
    if guard.stopped_at is not None:
        result["stopped"] = _nan_message(guard, best.state["best_epoch"], label)
    if chief:
        model.save(os.path.join(run_dir, rundir.BEST_MODEL))
        rundir.write_json(os.path.join(run_dir, rundir.METRICS), result)
        if export_dir:
            from tf_multvae.serving import export

            result["saved_model"] = export.export_run(run_dir, export_dir)
    if guard.stopped_at is not None:
        raise FloatingPointError(result["stopped"])
    return result
