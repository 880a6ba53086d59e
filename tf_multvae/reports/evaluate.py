"""``python -m tf_multvae.reports.evaluate``: a run's model on held-out users.

    python -m tf_multvae.reports.evaluate --run-dir runs/ml-20m-vae \\
        [--split test|validation] [--k 20,50,100]

Loads the run's best model (``best.keras``; a baseline run is refit from
its config.json), ranks every item for each held-out user with the fold-in
items masked (the paper's protocol, docs/design.md) a chunk of
``--batch-size`` users at a time, and prints Recall@k and NDCG@k for each
k with standard errors. Writes the same table as ``RUN/eval-SPLIT.json``
and one row per user as ``RUN/per_user-SPLIT.csv`` (user id, fold-in
count, held-out count, each metric) for your own analyses.
"""

from __future__ import annotations

import argparse
import os
import sys

from tf_multvae import cli
from tf_multvae import features
from tf_multvae import rundir

# The default --k: the paper's cutoffs for Recall@k and NDCG@k, or
# NCF's for HR@k and NDCG@k on a leave-one-out dataset.
DEFAULT_CUTOFFS = {
    features.STRONG_GENERALIZATION: (20, 50, 100),
    features.LEAVE_ONE_OUT: (10,),
}


def _cutoffs(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(k) for k in text.split(",") if k.strip())
    except ValueError:
        ks = ()
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(
            f"--k takes comma-separated positive integers, not {text!r}"
        )
    return ks


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tf_multvae.reports.evaluate",
        description="Recall@k and NDCG@k of a run's best model.",
    )
    p.add_argument("--run-dir", required=True)
    p.add_argument(
        "--split", choices=features.HELDOUT_SPLITS, default=features.TEST
    )
    p.add_argument(
        "--k",
        type=_cutoffs,
        help="cutoffs, comma-separated (20,50,100; leave-one-out: 10)",
    )
    p.add_argument(
        "--data-dir", help="prepared dataset (default: the run's config)"
    )
    p.add_argument(
        "--batch-size", type=int, default=500, help="users ranked at once"
    )
    cli.add_verbose(p)
    return p.parse_args(argv)


def run(
    run_dir: str,
    split: str = features.TEST,
    ks: tuple[int, ...] | None = None,
    data_dir: str | None = None,
    batch_size: int = 500,
) -> dict:
    """Evaluates the run's model and writes eval-SPLIT.json, per_user-SPLIT.csv.

    Returns:
        The JSON written: ``split``, ``data_dir``, ``k`` and ``metrics``
        (``evaluation.summarize``: each metric's mean and stderr, users).
        ``ks`` None: :data:`DEFAULT_CUTOFFS` of the dataset's protocol.

    Raises:
        FileNotFoundError, ValueError: not a run directory, a missing or
            damaged dataset or not the one the run trained on
            (``runs.check_dataset``), or a cutoff above the number of
            items.
    """
    from tf_multvae import datadir
    from tf_multvae.reports import evaluation
    from tf_multvae.reports import runs

    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    scorer, data_dir = runs.load_scorer(run_dir, data_dir)
    if ks is None:
        ks = DEFAULT_CUTOFFS[datadir.load_info(data_dir).protocol]
    with datadir.reading(data_dir):
        per_user = evaluation.per_user_metrics(
            scorer, data_dir, split, batch_size, ks
        )
    names = evaluation.metric_keys(per_user)
    result = {
        "split": split,
        "data_dir": os.path.abspath(data_dir),
        "k": sorted(set(ks)),
        "metrics": evaluation.summarize(per_user, names),
    }
    runs.write_per_user(rundir.per_user_path(run_dir, split), per_user, names)
    rundir.write_json(rundir.summary_path(run_dir, split), result)
    return result


@cli.command("evaluate")
def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        result = run(
            args.run_dir, args.split, args.k, args.data_dir, args.batch_size
        )
    except cli.USER_ERRORS as err:
        return cli.fail(err)
    from tf_multvae.reports import evaluation

    print(
        evaluation.format_table(
            result["metrics"], f"{args.run_dir}, {args.split} users"
        )
    )
    print(f"wrote {rundir.summary_path(args.run_dir, args.split)}")
    print(f"      {rundir.per_user_path(args.run_dir, args.split)}")
    return 0


if __name__ == "__main__":
    cli.quiet_process("evaluate")
    sys.exit(cli.end_process(main()))
