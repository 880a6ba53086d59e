"""The KerasTuner HyperModel of Mult-VAE^PR / Mult-DAE.

``MultVAEHyperModel.build(hp)`` turns a trial's hyperparameters (the
search space of ``tuning.space``) into the project's
:class:`~tf_multvae.config.RunConfig` (the dataset's preset with the
trial's values put in) and builds the model with
``tf_multvae.training.loop.build_compiled_model``; ``fit`` trains it on
``tf_multvae.training.loop.fit_data``, the batches and validation passes of
``python -m tf_multvae.train``. The objective is therefore the validation
NDCG@100 that the models' ``test_step`` computes and that picks the best
epoch in training (docs/design.md, "The paper's protocol"), at its best
epoch.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time

import keras
import keras_tuner as kt

from tf_multvae import config as cfg
from tf_multvae import data
from tf_multvae import datadir
from tf_multvae import metrics
from tf_multvae.training import callbacks as cb
from tf_multvae.training import loop
from tuning import hparams
from tuning.space import RANGES
from tuning.space import SearchSpace
from tuning.space import apply

OBJECTIVE = cb.MONITOR  # val_ndcg_at_100, as training selects epochs


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
        self.n_items = datadir.load_info(data_dir).n_items

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
        keras.utils.set_random_seed(config.train.seed)  # as loop.run does
        return loop.build_compiled_model(config, self.n_items)

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
            keras_tuner.errors.FatalValueError: a shard of the dataset is
                corrupt (it ends the search).
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
            writer = hparams.trial_writer(
                run_dir, {n: hp.get(n) for n in self.space.names}, trial_id
            )
        if initial_epoch:
            # β_t reads the update count: continue it with the weights.
            steps = data.steps_per_epoch(self.data_dir, t.batch_size)
            model.optimizer.build(model.trainable_variables)
            model.optimizer.iterations.assign(initial_epoch * steps)
        if verbose == "auto":
            verbose = 2
        try:
            with datadir.reading(self.data_dir):
                history = model.fit(
                    **loop.fit_data(self.data_dir, t, initial_epoch),
                    epochs=t.epochs,
                    initial_epoch=initial_epoch,
                    callbacks=own + list(callbacks or []),
                    verbose=verbose,
                    **kwargs,
                ).history
        except datadir.CorruptShard as err:
            # Every trial would meet it: end the search (KerasTuner would
            # count the trial failed and go on to the next).
            raise kt.errors.FatalValueError(str(err)) from None
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
            if name.startswith(metrics.VALIDATION_PREFIX)
        }
        result.update(
            best_epoch=initial_epoch + best + 1,
            epochs=initial_epoch + len(history[OBJECTIVE]),
            seconds=round(time.time() - started, 1),
        )
        if writer is not None:
            hparams.write_best(writer, result["best_epoch"], result[OBJECTIVE])
        return result

    def write_hparams_config(self) -> None:
        """The HParams dashboard's experiment (with a ``log_dir``)."""
        if self.log_dir is not None:
            hparams.write_experiment(self.log_dir, self.space)
