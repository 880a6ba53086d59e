"""Training callbacks: TensorBoard scalars, best weights, backups, NaN stop.

Each keeps its state in the run directory, so a run killed at any point and
started again with the same command resumes where its last completed epoch
left it (weights, Adam's moments and update count, the noise generators'
state, the best epoch so far and the validation history).
"""

from __future__ import annotations

import json
import math
import os

import keras
import tensorflow as tf

from tf_multvae import metrics
from tf_multvae import rundir
from tf_multvae.model.annealing import kl_beta

VAL = metrics.VALIDATION_PREFIX
MONITOR = VAL + metrics.SELECTION_METRIC  # val_ndcg_at_100
# Train tracker name -> TensorBoard tag. "loss" is the negative β-ELBO for
# Mult-VAE and the regularized negative log-likelihood for Mult-DAE.
TRAIN_TAGS = {"loss": "neg_elbo", "nll": "nll", "kl": "kl"}


class NanGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and remembers where."""

    def __init__(self):
        super().__init__()
        self.stopped_at = None  # (epoch, update) of the first NaN loss
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            step = int(self.model.optimizer.iterations.numpy())
            self.stopped_at = (self._epoch, step)
            self.model.stop_training = True


class StepScalars(keras.callbacks.Callback):
    """TensorBoard scalars: training every ``every`` updates, validation
    every epoch.

    Training tags (step = update count): ``neg_elbo``, ``nll``, ``kl`` (the
    epoch's running means, as Keras logs them) and ``beta`` (the KL weight
    of the last update). Validation tags (step = epoch): ``ndcg_at_100``,
    ``recall_at_20``, ``recall_at_50``.
    """

    def __init__(self, log_dir: str, every: int, anneal: tuple | None):
        super().__init__()
        self._every = every
        self._anneal = anneal  # (cap, total_anneal_steps) or None
        self._train = tf.summary.create_file_writer(f"{log_dir}/train")
        self._valid = tf.summary.create_file_writer(f"{log_dir}/validation")

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step % self._every:
            return
        with self._train.as_default(step=step):
            for name, tag in TRAIN_TAGS.items():
                if name in (logs or {}):
                    tf.summary.scalar(tag, float(logs[name]))
            if self._anneal is not None:
                tf.summary.scalar("beta", kl_beta(step - 1, *self._anneal))

    def on_epoch_end(self, epoch, logs=None):
        with self._valid.as_default(step=epoch + 1):
            for name, value in (logs or {}).items():
                if name.startswith(VAL):
                    tf.summary.scalar(name[len(VAL) :], float(value))
        self._train.flush()
        self._valid.flush()

    def on_train_end(self, logs=None):
        self._train.close()
        self._valid.close()


class BestWeights(keras.callbacks.Callback):
    """Keeps the weights of the best epoch by a validation metric.

    ``monitor``: the Keras log that selects (``MONITOR``, validation
    NDCG@100; under leave-one-out ``val_ndcg_at_10``); None where the
    dataset has no validation users, and then the last epoch is kept
    (a fixed number of epochs). ``best.json`` holds the best value and
    epoch and the validation history; it survives restarts (Keras's
    ModelCheckpoint forgets its best value).
    """

    def __init__(
        self,
        run_dir: str,
        initial_epoch: int,
        guard: NanGuard,
        monitor: str | None = MONITOR,
    ):
        super().__init__()
        self._weights = os.path.join(run_dir, rundir.BEST_WEIGHTS)
        self._state_path = os.path.join(run_dir, rundir.BEST_STATE)
        self._guard = guard
        self._monitor = monitor
        self.state = {"best": None, "best_epoch": None, "history": {}}
        if os.path.exists(self._state_path):
            with open(self._state_path) as f:
                self.state = json.load(f)
        # Epochs from initial_epoch on are (re)run: forget their records.
        self.state["history"] = {
            k: v[:initial_epoch] for k, v in self.state["history"].items()
        }

    def on_epoch_end(self, epoch, logs=None):
        if self._guard.stopped_at is not None:
            return
        logs = logs or {}
        for name, value in logs.items():
            if name.startswith(VAL):
                self.state["history"].setdefault(name[len(VAL) :], []).append(
                    float(value)
                )
        if self._monitor is None:  # no validation: the latest epoch
            self._save(epoch, None)
        else:
            value = float(logs.get(self._monitor, float("nan")))
            best = self.state["best"]
            if math.isfinite(value) and (best is None or value > best):
                self._save(epoch, value)
        rundir.write_json(self._state_path, self.state)

    def _save(self, epoch: int, value: float | None) -> None:
        tmp = self._weights + rundir.WEIGHTS_TMP
        self.model.save_weights(tmp, overwrite=True)
        os.replace(tmp, self._weights)
        self.state.update(best=value, best_epoch=epoch + 1)


class EpochBackup(keras.callbacks.Callback):
    """A tf.train checkpoint of the whole training state after every epoch.

    It holds the model's variables (weights and the noise generators'
    state), the optimizer's (Adam's moments and the update count that the
    KL schedule reads) and the number of finished epochs.
    """

    def __init__(self, directory: str, model: keras.Model, guard: NanGuard):
        super().__init__()
        self._guard = guard
        self._epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        # tf.train.Checkpoint does not reach Keras's SeedGenerator states
        # through the model; list them so the noise resumes where it was.
        noise = [v for v in model.variables if "seed_generator" in v.path]
        checkpoint = tf.train.Checkpoint(
            model=model,
            optimizer=model.optimizer,
            noise=noise,
            epoch=self._epoch,
        )
        self._manager = tf.train.CheckpointManager(
            checkpoint, directory, max_to_keep=2
        )

    def restore(self) -> int:
        """Loads the latest backup, if any; returns the epochs it had done."""
        if self._manager.latest_checkpoint is None:
            return 0
        self._manager.checkpoint.restore(
            self._manager.latest_checkpoint
        ).assert_existing_objects_matched()
        return int(self._epoch.numpy())

    def on_epoch_end(self, epoch, logs=None):
        if self._guard.stopped_at is not None:
            return
        self._epoch.assign(epoch + 1)
        self._manager.save(checkpoint_number=epoch + 1)
