"""``python -m data_prep``: raw rating files -> a prepared dataset directory.

    python -m data_prep --dataset ml-20m --raw ml-20m/ratings.csv \\
        --out data/ml-20m

Unknown flags are Beam pipeline options and pass through unchanged
(``--runner DataflowRunner --project ... --temp_location ...``). Without
``--runner`` the pipeline runs on Beam's DirectRunner in multi-process mode
with one worker per core.

This module wires the stages, runs them and turns the outcome into an
exit code; the flags are :mod:`data_prep.flags`', Beam's options and
runner :mod:`data_prep.beam_run`'s, and the stages are in transforms,
grouping, leave_one_out_stages and sinks (NCF's own files:
:mod:`data_prep.ncf`).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
import time

import apache_beam as beam

from data_prep import beam_run
from data_prep import grouping
from data_prep import leave_one_out_stages
from data_prep import logs
from data_prep import output
from data_prep import report
from data_prep import sinks
from data_prep import transforms
from data_prep import workspace
from data_prep.beam_run import counters_of
from data_prep.beam_run import make_pipeline
from data_prep.beam_run import pipeline_options
from data_prep.config import PrepConfig
from data_prep.errors import DataPrepError
from data_prep.flags import config_from_args
from data_prep.flags import parse_args
from data_prep.ranges import ByteRange
from data_prep.ranges import plan_ranges
from data_prep.ranges import resolve_raw_files
from data_prep.readers import arrow_id_type
from tf_multvae import cli
from tf_multvae import features

MB = 1 << 20


def build(
    pipeline: beam.Pipeline,
    config: PrepConfig,
    ranges: list[ByteRange],
    directory: str,
    shards: int,
) -> None:
    """Wires the stages; everything is written under ``directory``."""
    id_type = arrow_id_type(config.layout)
    why_empty = (
        f"--threshold {config.threshold} and --min-item-users "
        f"{config.min_item_users}"
    )
    leave_one_out = config.protocol == features.LEAVE_ONE_OUT
    clicks = (
        pipeline
        | "Ranges" >> beam.Create(ranges)
        | "Read"
        >> transforms.ReadRatings(
            config.layout, config.on_bad_lines, timestamps=leave_one_out
        )
        | "Binarize" >> transforms.Binarize(config.threshold)
        | "FilterItems"
        >> transforms.FilterItems(config.min_item_users, id_type)
    )
    plan = clicks | "PlanSplit" >> transforms.PlanSplit(
        config.min_user_clicks,
        config.heldout_users,
        config.seed,
        id_type,
        why_empty,
        config.protocol,
    )
    if leave_one_out:
        user_lists, vocab = clicks | "LeaveOneOut" >> (
            leave_one_out_stages.LeaveOneOut(
                plan,
                shards,
                id_type,
                config.seed,
                config.negatives,
                f"{why_empty} and --min-user-clicks {config.min_user_clicks}",
            )
        )
    else:
        grouped = clicks | "GroupByUser" >> grouping.GroupClicksByUser(
            plan, shards
        )
        vocab = grouped[grouping.TRAIN_ITEMS] | "Vocabulary" >> (
            transforms.BuildVocabulary(id_type)
        )
        user_lists = grouped[grouping.GROUPS] | "DrawHeldout" >> (
            grouping.DrawHeldout(
                plan,
                vocab,
                config.seed,
                config.heldout_fraction,
                config.min_clicks_to_score,
            )
        )
    user_lists | "WriteShards" >> sinks.WriteUserShards(directory, shards)
    vocab | "WriteVocabulary" >> sinks.WriteVocabulary(directory)


def run(
    config: PrepConfig,
    raw: str | None,
    out: str,
    beam_args: list[str] = (),
    overwrite: bool = False,
    chunk_mb: int = 64,
    synthetic: dict | None = None,
) -> dict:
    """Prepares one dataset; returns its metadata.

    Raises:
        DataPrepError: bad arguments or input; nothing is left at ``out``
            (an existing ``out`` is untouched).
    """
    options = pipeline_options(list(beam_args))
    scratch = None
    extra_source = {}
    try:
        if raw is None and config.dataset == "synthetic":
            from data_prep import synthetic as synthlib

            output.prepare_out(out, overwrite, None, None)
            scratch = tempfile.mkdtemp(prefix="synthetic-raw-")
            raw = os.path.join(scratch, "ratings.csv")
            params = dict(synthetic or {})
            stats = synthlib.write_ratings_csv(raw, **params)
            extra_source = {"generator": {**params, **stats}}
        files = resolve_raw_files(raw, config.layout)
        if scratch is None:  # the user's raw files: kept apart from --out
            output.prepare_out(out, overwrite, raw, files)
        ranges = plan_ranges(files, chunk_mb * MB)
        raw_bytes = sum(r.end - r.start for r in ranges)
        shards = max(2, min(256, math.ceil(raw_bytes / (64 * MB))))
        beam_run.say(
            [beam_run.starting(len(files), raw_bytes, len(ranges), options)]
        )
        staging = output.staging_dir(out)
        try:
            started = time.time()
            pipeline = make_pipeline(options)
            build(pipeline, config, ranges, staging, shards)
            result = pipeline.run()
            result.wait_until_finish()
            counts = counters_of(result)
            output.add_empty_shards(staging, shards)
            shard_files = output.shard_lengths(staging)
            metadata = output.build_metadata(
                config.to_json(),
                files if scratch is None else ["<generated>"],
                counts,
                output.read_vocabulary_size(staging),
                shard_files,
                extra_source,
                protocol=config.protocol,
            )
            output.finish(
                staging, out, metadata, shard_files, time.time() - started
            )
        except BaseException:
            output.discard(staging)
            raise
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    return metadata


_USER_ERROR = re.compile(r"(?:BadLineError|DataPrepError): (.+)")


def user_error(err: BaseException) -> str | None:
    """Our own message inside an exception Beam may have wrapped."""
    if isinstance(err, DataPrepError):
        return str(err)
    found = _USER_ERROR.findall(str(err))
    return found[-1].strip() if found else None


@cli.command("data_prep")
def main(argv: list[str] | None = None) -> int:
    """``python -m data_prep``: 0, or 2 after ``error: MESSAGE``."""
    args, beam_args = parse_args(argv)
    try:
        cli.check_log_file(args.log_file)
    except OSError as err:
        return cli.fail(err)
    with logs.routed(args.verbose, args.log_file) as log:
        beam_run.say(workspace.remove_dead_scratch())
        try:
            with workspace.Scratch():
                metadata = _prepare(args, beam_args)
        except Exception as err:  # noqa: BLE001 - report ours, re-raise the rest
            message = user_error(err)
            if message is None:
                raise
            return cli.fail(message)
    beam_run.say(
        [report.account(metadata), "", report.format_statistics(metadata)]
    )
    if args.log_file:
        beam_run.say([f"log      {log}"])
    beam_run.say([f"wrote {os.path.abspath(args.out)}"])
    return 0


def _prepare(args, beam_args: list[str]) -> dict:
    if args.dataset == "ncf":
        from data_prep import ncf  # imports this module

        ncf.check_flags(args)
        return ncf.run(
            args.raw,
            args.out,
            beam_args,
            args.overwrite,
            args.chunk_mb,
            validation=args.ncf_validation,
            seed=args.seed,
        )
    if args.ncf_validation:
        raise DataPrepError("--ncf-validation applies to --dataset ncf only")
    return run(
        config_from_args(args),
        args.raw,
        args.out,
        beam_args,
        args.overwrite,
        args.chunk_mb,
        {
            "n_users": args.synthetic_users,
            "n_items": args.synthetic_items,
            "clicks_per_user": args.synthetic_clicks_per_user,
            "seed": args.synthetic_seed,
        },
    )
