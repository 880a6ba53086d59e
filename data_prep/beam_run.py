"""Running a Beam pipeline: the options, the runner, the counters.

Every data_prep command (:mod:`data_prep.pipeline`, :mod:`data_prep.ncf`)
builds its pipeline with :func:`make_pipeline` from
:func:`pipeline_options` and reads its counts back with
:func:`counters_of`, so Beam's options pass through the same way and the
DirectRunner defaults are the same everywhere.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.options.pipeline_options import StandardOptions

from data_prep import counters


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
