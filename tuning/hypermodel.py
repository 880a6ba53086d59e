"""The KerasTuner HyperModel of Mult-VAE^PR / Mult-DAE and its search space.

``MultVAEHyperModel.build(hp)`` turns a trial's hyperparameters into the
project's :class:`~tf_multvae.config.RunConfig` (the dataset's preset with
the trial's values put in) and builds the model with
``tf_multvae.train.build_compiled_model``; ``fit`` trains it on
``tf_multvae.train.fit_data``, the batches and validation passes of
``python -m tf_multvae.train``. The objective is therefore the validation
NDCG@100 that the models' ``test_step`` computes and that picks the best
epoch in training (DESIGN.md §2, "Model selection"), at its best epoch.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time
from dataclasses import dataclass

import keras
import keras_tuner as kt
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

from tf_multvae import callbacks as cb
from tf_multvae import config as cfg
from tf_multvae import data
from tf_multvae import train

OBJECTIVE = "val_ndcg_at_100"
# Hyperparameter -> the search flag that sets its range or choices. The
# names are the config fields they set (hidden_width: every hidden layer).
FLAGS = {
    "dropout": "--dropout",
    "anneal_cap": "--anneal-cap",
    "latent_dim": "--latent-dim",
    "learning_rate": "--lr",
    "total_anneal_steps": "--total-anneal-steps",
    "hidden_width": "--hidden-width",
}
RANGES = ("dropout", "anneal_cap", "learning_rate")  # (min, max) floats
VAE_ONLY = ("anneal_cap", "total_anneal_steps")
# Hyperparameters that are ModelConfig fields of the same name.
_MODEL_FIELDS = ("dropout", "anneal_cap", "latent_dim", "total_anneal_steps")
# Metrics of a trial's TensorBoard run that the HParams dashboard shows.
BEST_TAG = "best_ndcg_at_100"


@dataclass(frozen=True)
class SearchSpace:
    """What a search varies; None keeps the preset's value.

    Attributes:
        dropout: (min, max) of the input dropout rate, uniform.
        anneal_cap: (min, max) of β_cap, uniform (Mult-VAE only).
        latent_dim: sizes of z (or of the DAE's code) to choose from.
        learning_rate: (min, max) of Adam's step size, log-uniform.
        total_anneal_steps: updates over which β would reach 1, choices
            (Mult-VAE only).
        hidden_width: widths of the hidden layers, choices; every hidden
            layer of the preset gets the width (a preset without one, the
            DAE's, gets one layer).
    """

    dropout: tuple[float, float] | None = (0.0, 0.8)
    anneal_cap: tuple[float, float] | None = (0.0, 1.0)
    latent_dim: tuple[int, ...] | None = (50, 100, 200, 400)
    learning_rate: tuple[float, float] | None = None
    total_anneal_steps: tuple[int, ...] | None = None
    hidden_width: tuple[int, ...] | None = None

    def __post_init__(self):
        for name in FLAGS:
            values = getattr(self, name)
            if values is None:
                continue
            if len(values) == 0:
                raise ValueError(f"{FLAGS[name]} is empty")
            if name in RANGES and (len(values) != 2 or values[0] > values[1]):
                raise ValueError(
                    f"{FLAGS[name]} takes MIN,MAX with MIN <= MAX, "
                    f"not {','.join(map(str, values))}"
                )
        _check(self.dropout, "dropout", lambda v: 0.0 <= v < 1.0, "in [0, 1)")
        _check(self.anneal_cap, "anneal_cap", lambda v: v >= 0, ">= 0")
        _check(self.learning_rate, "learning_rate", lambda v: v > 0, "> 0")
        _check(self.latent_dim, "latent_dim", lambda v: v >= 1, ">= 1")
        _check(self.hidden_width, "hidden_width", lambda v: v >= 1, ">= 1")
        _check(
            self.total_anneal_steps,
            "total_anneal_steps",
            lambda v: v >= 0,
            ">= 0",
        )

    @property
    def names(self) -> tuple[str, ...]:
        """The hyperparameters searched, in :data:`FLAGS` order."""
        return tuple(n for n in FLAGS if getattr(self, n) is not None)

    def for_model(self, kind: str) -> "SearchSpace":
        """This space without what ``kind`` lacks (the DAE has no β).

        Raises:
            ValueError: a Mult-VAE-only value other than the default was
                asked of the DAE.
        """
        if kind == "vae":
            return self
        for name in VAE_ONLY:
            value = getattr(self, name)
            if value is not None and value != getattr(SearchSpace, name):
                raise ValueError(f"{FLAGS[name]} applies to --model vae only")
        return dataclasses.replace(
            self, anneal_cap=None, total_anneal_steps=None
        )


def _check(values, name, ok, rule):
    for value in values or ():
        if not ok(value):
            raise ValueError(
                f"{FLAGS[name]} values must be {rule}, got {value}"
            )


def apply(base: cfg.RunConfig, values: dict) -> cfg.RunConfig:
    """``base`` with hyperparameter values (named as in :data:`FLAGS`) in."""
    model = {k: v for k, v in values.items() if k in _MODEL_FIELDS}
    if "hidden_width" in values:
        layers = max(1, len(base.model.hidden_dims))
        model["hidden_dims"] = (int(values["hidden_width"]),) * layers
    trainer = base.train
    if "learning_rate" in values:
        trainer = dataclasses.replace(
            trainer, learning_rate=float(values["learning_rate"])
        )
    return dataclasses.replace(
        base, model=dataclasses.replace(base.model, **model), train=trainer
    )


class MultVAEHyperModel(kt.HyperModel):
    """Mult-VAE^PR / Mult-DAE over a :class:`SearchSpace`.

    Args:
        base: the run configuration the trials start from (a preset with
            the search's model kind, epochs, batch size and seed).
        data_dir: a prepared dataset directory.
        space: the search space.
        log_dir: TensorBoard directory; a trial whose id ``fit`` is given
            logs under ``log_dir/trial_ID`` (the HParams dashboard reads
            them). None: no logs.

    Raises:
        FileNotFoundError, ValueError: ``data_dir`` is not a prepared
            dataset, or ``space`` does not fit the model kind.
    """

    def __init__(
        self,
        base: cfg.RunConfig,
        data_dir: str,
        space: SearchSpace,
        log_dir: str | None = None,
    ):
        super().__init__(name=f"mult_{base.model.kind}")
        self.base = base
        self.data_dir = data_dir
        self.space = space.for_model(base.model.kind)
        self.log_dir = log_dir
        self.n_items = data.load_info(data_dir).n_items

    def values(self, hp: kt.HyperParameters) -> dict:
        """Declares the space in ``hp`` (first call) and returns its values."""
        out = {}
        for name in self.space.names:
            spec = getattr(self.space, name)
            if name in RANGES and spec[0] < spec[1]:
                sampling = "log" if name == "learning_rate" else "linear"
                out[name] = hp.Float(name, *spec, sampling=sampling)
            elif name in RANGES or len(spec) == 1:
                out[name] = hp.Fixed(name, spec[0])
            else:
                out[name] = hp.Choice(name, list(spec))
        return out

    def config(self, hp: kt.HyperParameters) -> cfg.RunConfig:
        """The run configuration of a trial."""
        return apply(self.base, self.values(hp))

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        config = self.config(hp)
        keras.utils.set_random_seed(config.train.seed)  # as train.run does
        return train.build_compiled_model(config, self.n_items)

    def fit(
        self,
        hp: kt.HyperParameters,
        model: keras.Model,
        trial_id: str | None = None,
        callbacks=None,
        epochs: int | None = None,
        initial_epoch: int = 0,
        verbose: int | str = "auto",
        **kwargs,
    ) -> dict:
        """Trains a trial's model as ``python -m tf_multvae.train`` does.

        Args:
            epochs, initial_epoch: the epochs to run (Hyperband continues a
                model from ``initial_epoch``); default: the config's.
            trial_id: names the trial's TensorBoard run.
            callbacks, verbose, **kwargs: for ``model.fit``.

        Returns:
            ``val_ndcg_at_100`` (the objective) and the validation recalls
            of the best epoch, ``best_epoch`` and ``epochs`` (counted from
            the start of training) and ``seconds``.

        Raises:
            keras_tuner.errors.FailedTrialError: no epoch had a finite
                validation NDCG@100 (the loss became NaN).
        """
        started = time.time()
        config = self.config(hp)
        t = dataclasses.replace(
            config.train, epochs=epochs or config.train.epochs
        )
        m = config.model
        guard = cb.NanGuard()
        own = [guard]
        writer = None
        if trial_id is not None and self.log_dir is not None:
            run_dir = os.path.join(self.log_dir, f"trial_{trial_id}")
            shutil.rmtree(run_dir, ignore_errors=True)  # a retry starts over
            anneal = (m.anneal_cap, m.total_anneal_steps)
            own.append(
                cb.StepScalars(
                    run_dir, t.log_every, anneal if m.kind == "vae" else None
                )
            )
            writer = tf.summary.create_file_writer(run_dir)
            with writer.as_default():
                hparams_api.hparams(
                    {n: hp.get(n) for n in self.space.names},
                    trial_id=f"trial_{trial_id}",
                )
        if initial_epoch:
            # β_t reads the update count: continue it with the weights.
            steps = data.steps_per_epoch(self.data_dir, t.batch_size)
            model.optimizer.build(model.trainable_variables)
            model.optimizer.iterations.assign(initial_epoch * steps)
        if verbose == "auto":
            verbose = 2
        history = model.fit(
            **train.fit_data(self.data_dir, t, initial_epoch),
            epochs=t.epochs,
            initial_epoch=initial_epoch,
            callbacks=own + list(callbacks or []),
            verbose=verbose,
            **kwargs,
        ).history
        ndcg = history.get(OBJECTIVE, [])
        if guard.stopped_at is not None:  # epochs from the NaN on are void
            ndcg = ndcg[: guard.stopped_at[0] - initial_epoch]
        finite = [i for i, v in enumerate(ndcg) if math.isfinite(v)]
        if not finite:
            if writer is not None:
                writer.close()
            raise kt.errors.FailedTrialError(
                "no epoch had a finite validation NDCG@100 (the loss became "
                f"NaN: {guard.stopped_at})"
            )
        best = max(finite, key=lambda i: ndcg[i])
        result = {
            name: float(history[name][best])
            for name in history
            if name.startswith("val_")
        }
        result.update(
            best_epoch=initial_epoch + best + 1,
            epochs=initial_epoch + len(history[OBJECTIVE]),
            seconds=round(time.time() - started, 1),
        )
        if writer is not None:
            with writer.as_default(step=result["best_epoch"]):
                tf.summary.scalar(BEST_TAG, result[OBJECTIVE])
            writer.close()
        return result

    def write_hparams_config(self) -> None:
        """The HParams dashboard's experiment: the space and the metrics."""
        if self.log_dir is None:
            return
        domains = []
        for name in self.space.names:
            spec = getattr(self.space, name)
            if name in RANGES:
                low, high = float(spec[0]), float(spec[1])
                domain = hparams_api.RealInterval(low, high)
            else:
                domain = hparams_api.Discrete([int(v) for v in spec])
            domains.append(hparams_api.HParam(name, domain))
        metrics = [
            hparams_api.Metric(
                BEST_TAG, display_name="best validation NDCG@100"
            ),
            hparams_api.Metric(
                "ndcg_at_100",
                group="validation",
                display_name="validation NDCG@100 (last epoch)",
            ),
        ]
        writer = tf.summary.create_file_writer(self.log_dir)
        with writer.as_default():
            hparams_api.hparams_config(hparams=domains, metrics=metrics)
        writer.close()
