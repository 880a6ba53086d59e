"""The run-directory contract: file names, atomic JSON, one configuration.

``python -m tf_multvae.train`` (Mult-VAE^PR, Mult-DAE) and ``python -m
tf_multvae.baselines`` write a run directory; the report commands read it
and add their files (docs/design.md, "Run directories")::

    config.json            the resolved configuration; ["model"]["kind"]
                           is vae, dae, popularity or ease
    metrics.json           {"test": {"ndcg_at_100": {"mean", "stderr"},
                           ..., "users": n}, "validation":
                           {"ndcg_at_100": [one value per epoch], ...}}
    best.keras             the best model (trained models only)
    best.weights.h5        its weights, kept while training
    best.json              the best epoch and the validation history
    backup/                a tf.train checkpoint after every epoch
    logs/                  TensorBoard scalars (trained models only)
    eval-SPLIT.json        python -m tf_multvae.reports.evaluate's summary
    per_user-SPLIT.csv     one row per user: user_id, n_fold_in,
                           n_heldout and each metric

A directory holds one configuration: :func:`prepare` refuses one that
holds another (or that holds something that is not a run) unless asked to
start over, for training, the baselines, the search and the tables alike.
config.json's :data:`FINGERPRINT` names the preparation of the dataset
the run trained on (``tf_multvae.datadir.fingerprint``; runs written
before it have none, and are taken as they are).

Imports only the standard library: everything else may import it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil

CONFIG = "config.json"
METRICS = "metrics.json"
BEST_MODEL = "best.keras"
BEST_WEIGHTS = "best.weights.h5"
BEST_STATE = "best.json"
BACKUP = "backup"
LOGS = "logs"
FINGERPRINT = "dataset_fingerprint"  # config.json's, of the dataset


# What a writer killed mid-write leaves in a run directory: write_json's
# and the tables' "NAME.tmp", the best weights' "best.weights.h5.tmp.
# weights.h5", and under backup/ tf.train's sharded-save "ckpt-N_temp".
TMP = ".tmp"
WEIGHTS_TMP = ".tmp.weights.h5"  # Keras wants weight files in .weights.h5
TMP_SUFFIXES = (TMP, WEIGHTS_TMP)
BACKUP_TMP = "_temp"


def remove_leftovers(run_dir: str) -> list[str]:
    """Removes the temporary files an interrupted run left in ``run_dir``
    (:data:`TMP_SUFFIXES`, backup/'s :data:`BACKUP_TMP` folders); returns
    their paths."""

    def entries(directory: str) -> list[str]:
        if not os.path.isdir(directory):
            return []
        return [
            os.path.join(directory, e) for e in sorted(os.listdir(directory))
        ]

    found = [p for p in entries(run_dir) if p.endswith(TMP_SUFFIXES)]
    backup = entries(os.path.join(run_dir, BACKUP))
    found += [p for p in backup if BACKUP_TMP in os.path.basename(p)]
    for path in found:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.remove(path)
    return found


def summary_path(run_dir: str, split: str) -> str:
    """Where ``reports.evaluate`` writes a split's summary."""
    return os.path.join(run_dir, f"eval-{split}.json")


def per_user_path(run_dir: str, split: str) -> str:
    """Where a split's per-user metrics go (CSV)."""
    return os.path.join(run_dir, f"per_user-{split}.csv")


def _finite(value):
    """NaN and infinities -> None, recursively (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_json(path: str, value) -> None:
    """``value`` as strict JSON (NaN written as null), atomically.

    The file is written next to ``path`` and renamed over it, so a reader
    (or a killed writer) never sees half a file.
    """
    tmp = path + TMP
    with open(tmp, "w") as f:
        json.dump(_finite(value), f, indent=2, allow_nan=False)
    os.replace(tmp, path)


def _current_names(value):
    """Metric keys of files written before the one spelling (``ndcg@100``)
    as they are spelled now (``ndcg_at_100``), recursively."""
    if isinstance(value, dict):
        return {
            k.replace("@", "_at_"): _current_names(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_current_names(v) for v in value]
    return value


def read_json(run_dir: str, name: str) -> dict:
    """``run_dir/name`` as JSON (metric keys in today's spelling).

    Raises:
        FileNotFoundError: no such file; the message says what a run
            directory is.
    """
    path = os.path.join(run_dir, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{run_dir} is not a finished run directory: it has no {name} "
            "(make one with python -m tf_multvae.train or "
            "python -m tf_multvae.baselines)"
        )
    with open(path) as f:
        value = json.load(f)
    return value if name == CONFIG else _current_names(value)


def kind(config: dict) -> str:
    """The model kind of a config.json: vae, dae or a baseline's."""
    return config["model"]["kind"]


def as_read(value: dict) -> dict:
    """``value`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


def differences(previous: dict, resolved: dict, ignore=()) -> list[str]:
    """Top-level keys whose values differ, except those in ``ignore``."""
    resolved = as_read(resolved)
    return sorted(
        k
        for k in set(previous) | set(resolved)
        if k not in ignore and previous.get(k) != resolved.get(k)
    )


def prepare(
    directory: str,
    resolved: dict,
    overwrite: bool,
    *,
    name: str = CONFIG,
    flag: str = "--run-dir",
    ignore: tuple[str, ...] = (),
) -> None:
    """Makes ``directory`` hold this configuration, or checks that it does.

    An empty or missing directory gets ``name`` (the resolved
    configuration); one holding the same configuration (the keys in
    ``ignore`` aside) is continued. With ``overwrite`` a directory holding
    another configuration is emptied first. A non-empty directory without
    ``name`` is never touched: it is not a run.

    Raises:
        NotADirectoryError: ``directory`` is a file.
        ValueError: the directory holds another configuration (without
            ``overwrite``) or something that is not a run.
    """
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise NotADirectoryError(f"{flag} {directory} is a file")
    path = os.path.join(directory, name)
    # Hidden entries do not count: other workers of a distributed run keep
    # their state in RUN/.worker-N, and may create it first.
    exists = os.path.isdir(directory) and any(
        not entry.startswith(".") for entry in os.listdir(directory)
    )
    if exists and not os.path.isfile(path):
        raise ValueError(
            f"{flag} {directory} is not empty and holds no {name}, so it is "
            f"not a run of this project; choose another {flag}"
        )
    if exists and overwrite:
        shutil.rmtree(directory)
    elif exists:
        with open(path) as f:
            previous = json.load(f)
        if FINGERPRINT not in previous:  # a run from before fingerprints
            ignore = (*ignore, FINGERPRINT)
        changed = differences(previous, resolved, ignore)
        if FINGERPRINT in changed:
            raise ValueError(
                f"{flag} {directory} holds a run trained on "
                f"{resolved.get('data_dir')} before it was prepared again "
                "(the dataset's fingerprint differs); pass --overwrite to "
                f"start over there, or choose another {flag}"
            )
        if changed:
            raise ValueError(
                f"{flag} {directory} holds a run with another configuration "
                f"(differs in {', '.join(changed)}); pass --overwrite to "
                f"start over there, or choose another {flag}"
            )
    os.makedirs(directory, exist_ok=True)
    write_json(path, resolved)


def _entries(directory: str) -> set[str]:
    """Every path below ``directory`` (directories end with a slash)."""
    found = set()
    for root, dirs, files in os.walk(directory):
        found.update(os.path.join(root, d) + os.sep for d in dirs)
        found.update(os.path.join(root, f) for f in files)
    return found


@contextlib.contextmanager
def unchanged_on(directory: str, errors: tuple[type[BaseException], ...]):
    """Takes back what the body added to ``directory`` if it raises
    one of ``errors``: the directory itself when it did not exist, else
    the files and folders that were not there (a file rewritten with the
    same contents, such as config.json by :func:`prepare`, stays)."""
    existed = os.path.isdir(directory)
    before = _entries(directory) if existed else set()
    try:
        yield
    except errors:
        if not existed:
            shutil.rmtree(directory, ignore_errors=True)
        elif os.path.isdir(directory):
            for path in sorted(_entries(directory) - before, reverse=True):
                if path.endswith(os.sep):
                    shutil.rmtree(path, ignore_errors=True)
                elif os.path.lexists(path):
                    os.remove(path)
        raise


def finished(run_dir: str, wanted: dict) -> dict | None:
    """metrics.json of a finished run whose config.json has ``wanted``.

    Args:
        run_dir: a run directory (need not exist).
        wanted: the configuration keys that must match (others in
            config.json, such as data_dir or n_items, are not compared).

    Returns:
        metrics.json's contents, or None: no finished run there, or one of
        another configuration.
    """
    try:
        previous = read_json(run_dir, CONFIG)
        metrics = read_json(run_dir, METRICS)
    except FileNotFoundError:
        return None
    other = set(previous) - set(wanted)
    return None if differences(previous, wanted, ignore=other) else metrics


def write_report(directory: str, stem: str, result: dict, text: str) -> None:
    """A report table as ``STEM.json`` and ``STEM.md`` in ``directory``."""
    os.makedirs(directory, exist_ok=True)
    write_json(os.path.join(directory, f"{stem}.json"), result)
    tmp = os.path.join(directory, f"{stem}.md{TMP}")
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, os.path.join(directory, f"{stem}.md"))
