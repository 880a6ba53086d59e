"""Running a Beam pipeline: the options, the runner, the counters.

Every data_prep command (:mod:`data_prep.pipeline`, :mod:`data_prep.ncf`)
builds its pipeline with :func:`make_pipeline` from
:func:`pipeline_options` and reads its counts back with
:func:`counters_of`, so Beam's options pass through the same way and the
DirectRunner defaults are the same everywhere.
"""

from __future__ import annotations

import os

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import DirectOptions
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.options.pipeline_options import StandardOptions
from apache_beam.transforms.environments import SubprocessSDKEnvironment

from data_prep import counters
from data_prep import worker

_MB = 1 << 20


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

        direct = options.view_as(DirectOptions)
        if direct.direct_running_mode != "multi_processing":
            return beam.Pipeline(runner=FnApiRunner(), options=options)
        # Its worker processes are data_prep.worker's (Beam's own worker,
        # stopping with this process and logging where it says). Beam's
        # "multi_processing" would put back its own worker command;
        # "in_memory" keeps this environment and the worker count.
        direct.direct_running_mode = "in_memory"
        environment = SubprocessSDKEnvironment.from_command_string(
            worker.command_line()
        )
        os.environ[worker.PARENT_ENV] = str(os.getpid())
        runner = FnApiRunner(default_environment=environment)
        return beam.Pipeline(runner=runner, options=options)
    return beam.Pipeline(options=options)


def counters_of(result) -> dict[str, int]:
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


def say(lines: list[str]) -> None:
    """Prints data prep's progress account (stdout)."""
    for line in lines:
        print(line, flush=True)


def starting(n_files: int, n_bytes: int, n_ranges: int, options) -> str:
    """The line printed as the pipeline starts."""
    runner = options.view_as(StandardOptions).runner or "DirectRunner"
    workers = options.view_as(DirectOptions).direct_num_workers
    if runner == "DirectRunner":
        runner += f", {workers or os.cpu_count()} worker processes"
    return (
        f"reading  {n_files} raw file(s), {n_bytes / _MB:,.1f} MB in "
        f"{n_ranges} byte range(s) ({runner})"
    )
