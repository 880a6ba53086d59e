"""``python -m tf_multvae.serving.export``: a run -> SavedModel for TF Serving.

    python -m tf_multvae.serving.export --run-dir runs/ml-20m-vae \\
        --out models/ml-20m

writes ``models/ml-20m/N/`` (N: ``--version``, by default one more than the
highest version there), the layout TF Serving's ``model_base_path``
expects. The SavedModel holds the best model's weights, the item
vocabulary (``items.txt`` as an asset, read into lookup tables) and two
signatures (``tf_multvae.serving.signatures``; docs/design.md, "Commands
and interfaces"):

- ``serving_default``: ``items``, string ``[batch, max_len]`` raw item ids
  padded with "";
- ``by_index``: ``item_indices``, int64 ``[batch, max_len]`` item indices
  padded with -1.

Both return, per user, the ``top_k`` best items other than the input items:
``item_ids`` (string ``[batch, k]``), ``item_indices`` (int64 ``[batch,
k]``), ``scores`` (float32 ``[batch, k]``, the logits, best first) and
``unknown_items`` (int64 ``[batch]``: input ids not in the vocabulary,
which are ignored). Repeated input items count once. A user with fewer
than ``top_k`` items left (the items minus the distinct known input
items) gets those, then padding: ``item_ids`` "", ``item_indices`` -1,
``scores`` NaN (``NaN`` in TF Serving's JSON), never an input item. An
input of another rank than 2 is refused with an InvalidArgumentError
naming ``[batch, max_len]``. The graph is plain TensorFlow: serving it
needs neither Keras nor this package.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys

import tensorflow as tf

from tf_multvae import cli
from tf_multvae import datadir
from tf_multvae import features
from tf_multvae import rundir
from tf_multvae import staging
from tf_multvae.serving.signatures import DEFAULT_TOP_K
from tf_multvae.serving.signatures import OUTPUT_DTYPES
from tf_multvae.serving.signatures import SAVED_MODEL_FILE
from tf_multvae.serving.signatures import ServingModule


def _data_dir(run_dir: str, data_dir: str | None) -> str:
    """``data_dir``, or the data_dir that the run's config.json records."""
    if data_dir is None:
        path = os.path.join(run_dir, rundir.CONFIG)
        if not tf.io.gfile.exists(path):
            raise ValueError(
                f"--run-dir {run_dir} has no {rundir.CONFIG}: not a training "
                "run directory (python -m tf_multvae.train writes one)"
            )
        with tf.io.gfile.GFile(path) as f:
            data_dir = json.load(f).get("data_dir")
        if not data_dir:
            raise ValueError(f"{path} does not name the data_dir")
    return data_dir


def _vocabulary_path(data_dir: str) -> str:
    """``items.txt`` of ``data_dir``."""
    vocab = tf.io.gfile.join(data_dir, features.VOCAB_FILE)
    if not tf.io.gfile.exists(vocab):
        raise FileNotFoundError(
            f"the item vocabulary {vocab} is missing (the run's data "
            "directory moved? pass --data-dir)"
        )
    return vocab


def load_run(run_dir: str, data_dir: str | None = None):
    """The best model of a training run and its item vocabulary file.

    Args:
        run_dir: a run directory of ``python -m tf_multvae.train``.
        data_dir: the prepared dataset it was trained on (default: the
            ``data_dir`` that config.json records).

    Returns:
        (model, vocabulary path): the Keras model of ``best.keras`` and
        the dataset's ``items.txt``.

    Raises:
        FileNotFoundError: ``run_dir`` or the vocabulary does not exist.
        ValueError: the run has no best model, the dataset is damaged or
            was prepared again since the run trained on it, or the
            vocabulary does not match the model's number of items.
    """
    import keras

    import tf_multvae.model  # noqa: F401  (registers the model classes)

    if not tf.io.gfile.isdir(run_dir):
        raise FileNotFoundError(f"--run-dir {run_dir} does not exist")
    best = os.path.join(run_dir, rundir.BEST_MODEL)
    if not tf.io.gfile.exists(best):
        raise ValueError(
            f"--run-dir {run_dir} has no best model ({rundir.BEST_MODEL}): "
            "training has not finished there, or never kept an epoch"
        )
    from tf_multvae.reports import runs

    data_dir = _data_dir(run_dir, data_dir)
    vocab = _vocabulary_path(data_dir)
    # The dataset it trained on, unchanged (shards, fingerprint).
    runs.check_dataset(run_dir, data_dir)
    model = keras.saving.load_model(best)
    n_ids = len(datadir.read_vocabulary(vocab))
    if n_ids != model.n_items:
        raise ValueError(
            f"{vocab} has {n_ids} items but the model scores "
            f"{model.n_items}: not the vocabulary it was trained with"
        )
    return model, vocab


def next_version(base_dir: str) -> int:
    """One more than the highest numbered version under ``base_dir`` (or 1)."""
    if not tf.io.gfile.isdir(base_dir):
        return 1
    versions = [
        int(name.rstrip("/"))
        for name in tf.io.gfile.listdir(base_dir)
        if name.rstrip("/").isdigit()
    ]
    return max(versions, default=0) + 1


_LEFT = re.compile(r"^\.(\d+)\.(?:swap\.json|tmp-|old-)")
_LEGACY = re.compile(r"^\.(export|replaced)-(\d+)-")


def recover_versions(base_dir: str) -> list[str]:
    """Recovers what a killed export left in a local ``base_dir``
    (:func:`tf_multvae.staging.recover` for each version it touched);
    returns the lines saying what was done."""
    if "://" in base_dir or not os.path.isdir(base_dir):
        return []
    entries = sorted(os.listdir(base_dir))
    said = []
    versions = {m.group(1) for m in map(_LEFT.match, entries) if m}
    for version in sorted(versions, key=int):
        final = os.path.join(base_dir, version)
        said += staging.recover(final, SAVED_MODEL_FILE)
    # Earlier versions of this module: .export-V-* (being written) and
    # .replaced-V-*/v (the version being replaced), without owners.
    legacy = [os.path.join(base_dir, e) for e in entries if _LEGACY.match(e)]
    for path in legacy:
        kind, version = _LEGACY.match(os.path.basename(path)).groups()
        final = os.path.join(base_dir, version)
        moved = os.path.join(path, "v")
        if (
            kind == "replaced"
            and not os.path.exists(final)
            and os.path.isfile(os.path.join(moved, SAVED_MODEL_FILE))
        ):
            os.rename(moved, final)
            shutil.rmtree(path, ignore_errors=True)
            said.append(
                f"restored {final}: an interrupted export had left it only "
                f"in {moved}"
            )
    said += staging.remove_dead(
        [p for p in legacy if os.path.isdir(p)], "leftover folder(s)"
    )
    return said


def version_dir(
    base_dir: str, version: int | None = None, overwrite: bool = False
) -> tuple[int, str]:
    """The version to write and its directory under ``base_dir``, after
    recovering what a killed export left there (said on stdout).

    Raises:
        ValueError: ``version`` < 1, or it exists and not ``overwrite``.
    """
    if os.path.exists(base_dir) and not os.path.isdir(base_dir):
        raise NotADirectoryError(
            f"{base_dir} is a file, not a directory of SavedModel versions "
            "(TF Serving's model_base_path)"
        )
    for line in recover_versions(base_dir):
        print(line)
    if version is None:
        version = next_version(base_dir)
    if version < 1:
        raise ValueError(f"--version must be >= 1, got {version}")
    final = tf.io.gfile.join(base_dir, str(version))
    if tf.io.gfile.exists(final) and not overwrite:
        raise ValueError(
            f"{final} already exists; pass --overwrite to replace it, or "
            "another --version"
        )
    return version, final


def save(
    module: ServingModule,
    base_dir: str,
    version: int | None = None,
    overwrite: bool = False,
) -> str:
    """Writes ``module`` as SavedModel ``base_dir/version``.

    A local export is written into a hidden directory beside it and renamed
    into place (:mod:`tf_multvae.staging`), so TF Serving, which watches
    ``base_dir``, never sees half a version, and a killed export leaves
    nothing the next one does not recover.

    Returns:
        The version directory.

    Raises:
        ValueError: see :func:`version_dir`.
    """
    version, final = version_dir(base_dir, version, overwrite)
    signatures = module.signature_functions()
    if "://" in base_dir:  # object stores cannot rename directories
        if tf.io.gfile.exists(final):
            tf.io.gfile.rmtree(final)
        tf.saved_model.save(module, final, signatures=signatures)
        return final
    os.makedirs(base_dir, exist_ok=True)
    writing = staging.staging_dir(final)
    try:
        tf.saved_model.save(module, writing, signatures=signatures)
        staging.swap_into_place(writing, final)
    except BaseException:
        shutil.rmtree(writing, ignore_errors=True)
        raise
    return final


def export_run(
    run_dir: str,
    out: str,
    top_k: int = DEFAULT_TOP_K,
    version: int | None = None,
    overwrite: bool = False,
    data_dir: str | None = None,
    output_dtype: str = "float32",
) -> str:
    """The best model of ``run_dir`` as SavedModel ``out/version``
    (``output_dtype``: see :class:`ServingModule`).

    Returns:
        The version directory written.

    Raises:
        FileNotFoundError, ValueError: see :func:`load_run`,
            :class:`~tf_multvae.serving.signatures.ServingModule` and
            :func:`save`; messages name the argument or file at fault.
    """
    version_dir(out, version, overwrite)  # fail before loading the model
    model, vocab = load_run(run_dir, data_dir)
    module = ServingModule(model, vocab, top_k, output_dtype)
    return save(module, out, version, overwrite)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tf_multvae.serving.export",
        description="Export a run's best model as a SavedModel for TF "
        "Serving (OUT/VERSION).",
    )
    p.add_argument("--run-dir", required=True, help="a training run directory")
    p.add_argument("--out", required=True, help="TF Serving model_base_path")
    p.add_argument("--top-k", type=int, default=DEFAULT_TOP_K)
    p.add_argument(
        "--version", type=int, help="default: one more than the highest there"
    )
    p.add_argument(
        "--data-dir", help="the prepared dataset (default: from config.json)"
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing version"
    )
    p.add_argument(
        "--output-dtype",
        choices=OUTPUT_DTYPES,
        default="float32",
        help="the output layer's kernel: float32 (default) or bfloat16, "
        "half the bytes each request reads (docs/design.md §6)",
    )
    cli.add_verbose(p)
    return p.parse_args(argv)


@cli.command("export")
def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _, code = cli.call(cli.check_directory, args.out, "--out")
    if code:
        return code
    path, code = cli.call(
        export_run,
        args.run_dir,
        args.out,
        args.top_k,
        args.version,
        args.overwrite,
        args.data_dir,
        args.output_dtype,
    )
    if code:
        return code
    print(f"SavedModel: {os.path.abspath(path)}")
    print(f"inspect:    saved_model_cli show --dir {path} --all")
    return 0


if __name__ == "__main__":
    cli.quiet_process("export")
    sys.exit(cli.end_process(main()))
