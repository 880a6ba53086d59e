"""``python -m data_prep``: raw rating files -> a prepared dataset directory.

    python -m data_prep --dataset ml-20m --raw ml-20m/ratings.csv \\
        --out data/ml-20m

Unknown flags are Beam pipeline options and pass through unchanged
(``--runner DataflowRunner --project ... --temp_location ...``). Without
``--runner`` the pipeline runs on Beam's DirectRunner in multi-process mode
with one worker per core.

The whole command is this one module (longer than 300 lines, by a little,
because it is the command in one place): flags ->
PrepConfig, Beam options, the wiring of the stages, the run and the exit
code; the stages themselves are in transforms, grouping and sinks.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import re
import shutil
import tempfile
import time

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.options.pipeline_options import StandardOptions

from data_prep import counters
from data_prep import grouping
from data_prep import output
from data_prep import sinks
from data_prep import transforms
from data_prep.config import CSV
from data_prep.config import PRESETS
from data_prep.config import PrepConfig
from data_prep.errors import DataPrepError
from data_prep.ranges import ByteRange
from data_prep.ranges import plan_ranges
from data_prep.ranges import resolve_raw_files
from data_prep.readers import arrow_id_type
from tf_multvae import cli

MB = 1 << 20
_SEPARATORS = {
    "\\t": "\t",
    "tab": "\t",
    "TAB": "\t",
    "comma": ",",
    "space": " ",
}


def parse_args(
    argv: list[str] | None = None,
) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep",
        description="Prepare a Mult-VAE dataset (Liang et al. 2018, §4.1) "
        "with Apache Beam. Unknown flags are Beam pipeline options.",
    )
    parser.add_argument("--dataset", required=True, choices=sorted(PRESETS))
    parser.add_argument(
        "--raw",
        help="raw ratings: a file, a directory or a glob (optional for "
        "synthetic, which then generates its own)",
    )
    parser.add_argument("--out", required=True, help="dataset directory")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing --out"
    )
    parser.add_argument(
        "--threshold",
        help="a rating is a click iff rating > threshold; 'none': every row",
    )
    parser.add_argument("--min-user-clicks", type=int)
    parser.add_argument("--min-item-users", type=int)
    parser.add_argument("--heldout-users", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--on-bad-lines", choices=("error", "skip"))
    csv = parser.add_argument_group("csv layout")
    csv.add_argument("--sep", help="field separator; '\\t' or 'tab' for tab")
    csv.add_argument("--header", action=argparse.BooleanOptionalAction)
    csv.add_argument(
        "--columns",
        help="comma-separated field names; user and item are required, "
        "rating optional (without it every row is a click), others ignored",
    )
    synth = parser.add_argument_group("synthetic data")
    synth.add_argument("--synthetic-users", type=int, default=10_000)
    synth.add_argument("--synthetic-items", type=int, default=3_000)
    synth.add_argument("--synthetic-clicks-per-user", type=float, default=60.0)
    synth.add_argument("--synthetic-seed", type=int, default=0)
    parser.add_argument(
        "--chunk-mb",
        type=int,
        default=64,
        help="raw files are read in byte ranges of about this size",
    )
    return parser.parse_known_args(argv)


def _threshold(value: str) -> float | None:
    if value.lower() == "none":
        return None
    try:
        return float(value)
    except ValueError:
        raise DataPrepError(
            f"--threshold must be a number or 'none', not {value!r}"
        )


def config_from_args(args: argparse.Namespace) -> PrepConfig:
    """The dataset's preset with every flag that was given applied."""
    config = PRESETS[args.dataset]
    layout = config.layout
    layout_changes = {}
    if args.sep is not None:
        layout_changes["sep"] = _SEPARATORS.get(args.sep, args.sep)
    if args.header is not None:
        layout_changes["header"] = args.header
    if args.columns is not None:
        layout_changes["columns"] = tuple(
            c.strip() for c in args.columns.split(",")
        )
    if layout_changes:
        if layout.kind != "delimited" or args.dataset != "csv":
            names = ", ".join("--" + k for k in layout_changes)
            raise DataPrepError(f"{names} apply to --dataset csv only")
        try:
            layout = dataclasses.replace(CSV, **layout_changes)
        except ValueError as err:
            raise DataPrepError(str(err)) from None
    changes = {"layout": layout}
    if args.threshold is not None:
        changes["threshold"] = _threshold(args.threshold)
    elif not layout.has_rating:
        changes["threshold"] = None
    for name in (
        "min_user_clicks",
        "min_item_users",
        "heldout_users",
        "seed",
        "on_bad_lines",
    ):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    try:
        return dataclasses.replace(config, **changes)
    except ValueError as err:
        raise DataPrepError(str(err)) from None


def pipeline_options(beam_args: list[str]) -> PipelineOptions:
    """Beam options: the user's, plus multi-process DirectRunner defaults."""
    args = list(beam_args)
    given = {a.split("=", 1)[0] for a in args if a.startswith("--")}
    runner = PipelineOptions(args).view_as(StandardOptions).runner
    if runner in (None, "DirectRunner", "direct"):
        if "--direct_running_mode" not in given:
            args.append("--direct_running_mode=multi_processing")
        if "--direct_num_workers" not in given:
            args.append("--direct_num_workers=0")  # one per core
    return PipelineOptions(args)


def make_pipeline(options: PipelineOptions) -> beam.Pipeline:
    """A Pipeline on the runner the options name.

    Without ``--runner`` this is the DirectRunner's portable engine (the
    FnApiRunner, multi-process per the options). Plain ``DirectRunner``
    would first try to download the Prism runner from GitHub, which an
    offline machine cannot do; naming ``--runner DirectRunner`` still
    gets exactly that behaviour.
    """
    if options.view_as(StandardOptions).runner is None:
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        return beam.Pipeline(runner=FnApiRunner(), options=options)
    return beam.Pipeline(options=options)


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
    clicks = (
        pipeline
        | "Ranges" >> beam.Create(ranges)
        | "Read" >> transforms.ReadRatings(config.layout, config.on_bad_lines)
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
    )
    grouped = clicks | "GroupByUser" >> grouping.GroupClicksByUser(plan, shards)
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


def _counters(result) -> dict[str, int]:
    """The run's counters (:mod:`data_prep.counters` names) -> totals."""
    query = MetricsFilter().with_namespace(counters.NAMESPACE)
    out = {}
    for counter in result.metrics().query(query)["counters"]:
        value = counter.committed
        if value is None:
            value = counter.attempted
        name = counter.key.metric.name
        out[name] = out.get(name, 0) + int(value or 0)
    return out


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
    output.check_out_dir(out, overwrite)
    options = pipeline_options(list(beam_args))
    scratch = None
    extra_source = {}
    try:
        if raw is None and config.dataset == "synthetic":
            from data_prep import synthetic as synthlib

            scratch = tempfile.mkdtemp(prefix="synthetic-raw-")
            raw = os.path.join(scratch, "ratings.csv")
            params = dict(synthetic or {})
            stats = synthlib.write_ratings_csv(raw, **params)
            extra_source = {"generator": {**params, **stats}}
        files = resolve_raw_files(raw, config.layout)
        ranges = plan_ranges(files, chunk_mb * MB)
        raw_bytes = sum(r.end - r.start for r in ranges)
        shards = max(2, min(256, math.ceil(raw_bytes / (64 * MB))))
        staging = output.staging_dir(out)
        try:
            started = time.time()
            pipeline = make_pipeline(options)
            build(pipeline, config, ranges, staging, shards)
            result = pipeline.run()
            result.wait_until_finish()
            counts = _counters(result)
            output.add_empty_shards(staging, shards)
            shard_files = output.shard_lengths(staging)
            metadata = output.build_metadata(
                config.to_json(),
                files if scratch is None else ["<generated>"],
                counts,
                output.read_vocabulary_size(staging),
                shard_files,
                extra_source,
            )
            metadata["pipeline_seconds"] = round(time.time() - started, 1)
            output.write_metadata(staging, metadata)
            output.write_tfds_metadata(staging, shard_files)
            output.swap_into_place(staging, out)
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


def main(argv: list[str] | None = None) -> int:
    """``python -m data_prep``: 0, or 2 after ``error: MESSAGE``."""
    args, beam_args = parse_args(argv)
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    try:
        config = config_from_args(args)
        synthetic = {
            "n_users": args.synthetic_users,
            "n_items": args.synthetic_items,
            "clicks_per_user": args.synthetic_clicks_per_user,
            "seed": args.synthetic_seed,
        }
        metadata = run(
            config,
            args.raw,
            args.out,
            beam_args,
            args.overwrite,
            args.chunk_mb,
            synthetic,
        )
    except Exception as err:  # noqa: BLE001 - report ours, re-raise the rest
        message = user_error(err)
        if message is None:
            raise
        return cli.fail(message)
    print(output.format_statistics(metadata))
    print(f"wrote {os.path.abspath(args.out)}")
    return 0
