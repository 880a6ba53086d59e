"""``python -m data_prep --dataset ncf``: NCF's leave-one-out files as given.

    python -m data_prep --dataset ncf --raw Data/ml-1m --out data/ncf-ml-1m
    python -m data_prep --dataset ncf --raw Data/ml-1m --ncf-validation \\
        --seed 98765 --out data/ncf-ml-1m-validation

Reads NCF's ``NAME.train.rating``, ``NAME.test.rating`` and
``NAME.test.negative`` (parsed by :mod:`data_prep.ncf_files` and
:mod:`data_prep.ncf_heldout`) into a prepared dataset of the leave-one-out
protocol (``features.LEAVE_ONE_OUT``): no threshold, no filters, no draws;
any bad line stops the run, named by file and line. Every user trains on
its training items (``features.ITEMS``); the test split holds every user
again, its training items as ``features.FOLD_IN``, its test item as
``features.HELDOUT`` and ``features.CANDIDATES``: its negatives in file
order, then the test item, the order NCF's evaluation visits them. The
validation split is empty, unless ``--ncf-validation`` (off by default; a
deviation from NCF's data, :mod:`data_prep.ncf_validation`): it removes
one training interaction per user, holding out one of the user's training
items, drawn uniformly at random (seeded by ``--seed``), as its validation
item; the rest are then its training items and, in both held-out splits,
its fold-in items. The test candidates are the file's either way: were
the validation item among the user's NCF test negatives, they would stay
exactly as the file has them (it never is: the files are checked, and a
test negative that is a training item is an error). A user with a single
training item keeps it and has no validation record.
The item vocabulary is every item id of the three files, sorted
numerically, so an item's index is its NCF id where those are 0..n-1.

The train file is read in byte ranges and grouped by user in Beam, in
groups of consecutive users (:mod:`data_prep.ncf_stages`); the test files
(one line per user) are checked by the driver before the pipeline starts,
then read into a side input that each group is joined with and checked
against. Beam options and the runner are :mod:`data_prep.beam_run`'s.
"""

from __future__ import annotations

import math
import time
from typing import Any
from typing import Tuple

import apache_beam as beam
import pyarrow as pa

from data_prep import beam_run
from data_prep import counters
from data_prep import ncf_files
from data_prep import ncf_heldout
from data_prep import ncf_stages
from data_prep import ncf_validation
from data_prep import output
from data_prep import sinks
from data_prep.beam_run import counters_of
from data_prep.beam_run import make_pipeline
from data_prep.beam_run import pipeline_options
from data_prep.config import PrepConfig
from data_prep.errors import DataPrepError
from data_prep.ranges import plan_ranges
from tf_multvae import features

DATASET = "ncf"
MB = 1 << 20
# metadata.json "parameters": what was done to the files (nothing, but
# for --ncf-validation's entries, ncf_validation.parameters).
PARAMETERS = {
    "dataset": DATASET,
    "protocol": features.LEAVE_ONE_OUT,
    "read_as_given": True,
    "threshold": None,
    "min_item_users": 0,
    "min_user_clicks": 0,
    "seed": None,
    "candidates": "the user's negatives in file order, then the test item",
}
# Flags of the other datasets, which NCF's files must not be put through.
_NOT_FOR_NCF = (
    "threshold min_user_clicks min_item_users heldout_users seed "
    "on_bad_lines sep header columns negatives"
).split()


def build(pipeline, files, ranges, directory: str, bounds, seed=None):
    """Wires the stages; everything is written under ``directory``.

    Args:
        bounds: the first user of each group of users
            (``HeldOut.group_bounds``): training shard ``g`` holds group
            ``g``.
        seed: ``--ncf-validation``'s seed, or None for no validation split.
    """
    heldout = features.HELDOUT_SPLITS if seed is not None else [features.TEST]
    n_groups = len(bounds)
    held = (
        pipeline
        | "TestFiles" >> beam.Create([files])
        | "ReadTestFiles" >> beam.Map(ncf_heldout.read_heldout)
    )
    held_side = beam.pvalue.AsSingleton(held)
    parsed = (
        pipeline
        | "Ranges" >> beam.Create(ranges)
        | "Spread" >> beam.Reshuffle()
        | "Parse"
        >> beam.ParDo(ncf_stages.ParseTrain(bounds))
        .with_output_types(Tuple[int, Any])
        .with_outputs("items", main="rows")
    )
    vocab = (
        parsed["items"]
        | "TrainItems" >> beam.CombineGlobally(ncf_stages.union)
        | "Vocabulary" >> beam.Map(ncf_stages.vocabulary, held_side)
    )
    every_group = pipeline | "Groups" >> beam.Create(
        [(g, None) for g in range(n_groups)]
    )
    lists = (
        (parsed["rows"], every_group)
        | "AllGroups" >> beam.Flatten()
        | "GroupByUser" >> beam.GroupByKey()
        | "Lists"
        >> beam.ParDo(
            ncf_stages.Lists(bounds, seed),
            held_side,
            beam.pvalue.AsSingleton(vocab),
        ).with_outputs(*heldout, main=features.TRAIN)
    )
    splits = (
        [lists[name] for name in heldout]
        | "HeldoutParts" >> beam.Flatten()
        | "BySplit" >> beam.GroupByKey()
        | "HeldoutSplits" >> beam.Map(ncf_stages.heldout_split)
    )
    (
        (lists[features.TRAIN], splits)
        | "UserLists" >> beam.Flatten()
        | "WriteShards" >> sinks.WriteUserShards(directory, n_groups)
    )
    (
        vocab
        | "VocabularyIds" >> beam.Map(pa.array, pa.int64())
        | "WriteVocabulary" >> sinks.WriteVocabulary(directory)
    )


def check_flags(args) -> None:
    """Raises DataPrepError for flags that apply to the other datasets
    (``--seed`` applies with ``--ncf-validation``)."""
    validation = getattr(args, "ncf_validation", False)
    given = [
        "--" + name.replace("_", "-")
        for name in _NOT_FOR_NCF
        if getattr(args, name, None) is not None
        and not (name == "seed" and validation)
    ]
    if getattr(args, "protocol", None) not in (None, features.LEAVE_ONE_OUT):
        given.append(f"--protocol {args.protocol}")
    if given:
        seed = " (--seed is, with --ncf-validation)" * ("--seed" in given)
        raise DataPrepError(
            f"{', '.join(given)}: not for --dataset ncf, whose files are "
            f"read as given{seed}"
        )


def run(
    raw: str | None,
    out: str,
    beam_args=(),
    overwrite: bool = False,
    chunk_mb: int = 64,
    validation: bool = False,
    seed: int | None = None,
) -> dict:
    """Prepares NCF's files at ``raw`` (``DIR/NAME``); returns the metadata.

    Args:
        validation: ``--ncf-validation`` (:mod:`data_prep.ncf_validation`).
        seed: its ``--seed``; None: data_prep's default
            (``PrepConfig.seed``). Unused without ``validation``.

    Raises:
        DataPrepError: bad arguments or input; nothing is left at ``out``
            (an existing ``out`` is untouched).
    """
    if not validation:
        seed = None
    elif seed is None:
        seed = PrepConfig.seed
    if seed is not None and not 0 <= seed < 2**32:
        raise DataPrepError(f"--seed must be in [0, 2**32), got {seed}")
    files = ncf_files.resolve(raw)
    output.prepare_out(out, overwrite, raw, files.paths)
    options = pipeline_options(list(beam_args))
    # Checked here first, to fail before the pipeline starts; the workers
    # read them again, so that the pipeline carries no data.
    held = ncf_heldout.read_heldout(files)
    ranges = plan_ranges([files.train], chunk_mb * MB)
    raw_bytes = sum(r.end - r.start for r in ranges)
    n_groups = max(2, min(256, math.ceil(raw_bytes / (64 * MB))))
    beam_run.say(
        [beam_run.starting(len(files.paths), raw_bytes, len(ranges), options)]
    )
    staging = output.staging_dir(out)
    try:
        started = time.time()
        pipeline = make_pipeline(options)
        bounds = held.group_bounds(n_groups)
        build(pipeline, files, ranges, staging, bounds, seed)
        result = pipeline.run()
        result.wait_until_finish()
        counts = counters_of(result)
        counts[counters.HELDOUT_USERS_PER_SPLIT] = held.users.size
        output.add_empty_shards(staging, n_groups)
        shard_files = output.shard_lengths(staging)
        path = f"{staging}/{features.VOCAB_FILE}"
        vocab = features.parse_vocabulary(output.read_bytes(path), path)
        only_in_test = counts.get(ncf_stages.ITEMS_ONLY_IN_TEST_FILES, 0)
        source = {
            "name": files.name,
            "items_in_train": counts.get(ncf_stages.TRAIN_ITEMS, 0),
            "items_only_in_test_files": only_in_test,
            "item_index_is_ncf_id": vocab == list(map(str, range(len(vocab)))),
        }
        metadata = output.build_metadata(
            {
                **PARAMETERS,
                **ncf_validation.parameters(
                    validation, seed, held.negatives.shape[1]
                ),
            },
            files.paths,
            counts,
            len(vocab),
            shard_files,
            source,
            protocol=features.LEAVE_ONE_OUT,
        )
        single = counts.get(ncf_stages.USERS_WITH_ONE_ITEM, 0)
        ncf_validation.count_users_once(metadata, single)
        output.finish(
            staging, out, metadata, shard_files, time.time() - started
        )
    except BaseException:
        output.discard(staging)
        raise
    return metadata
