"""``python tuning/search.py``: KerasTuner search of Mult-VAE^PR / Mult-DAE.

    python tuning/search.py --data-dir data/ml-1m --tuner random \\
        --max-trials 8 --epochs 40 --out runs/search-ml-1m-vae

Searches dropout, β_cap and the latent size (flags add the learning rate,
total anneal steps and hidden width) by validation NDCG@100, with the
models, data pipeline and metric of ``python -m tf_multvae.train``. The
output directory holds search.json (the resolved search), trials/ (the
KerasTuner project: oracle state, one trial.json and checkpoint per trial),
logs/ (TensorBoard with the HParams dashboard), trials.csv and trials.md,
best_hyperparameters.json and retrain.sh.

The same command run again continues an interrupted search (finished
trials are kept; the one that was running starts over); ``--overwrite``
starts over. With KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and
KERASTUNER_ORACLE_PORT set, the process is KerasTuner's chief (an id
containing "chief": it serves the oracle and writes the results) or a
worker (it runs trials for the chief's oracle).
"""

from __future__ import annotations

import argparse
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __package__ in (None, ""):  # run as a script: python tuning/search.py
    sys.path.insert(0, _REPO)

from tf_multvae import cli  # noqa: E402 (imports no TensorFlow)

TUNERS = ("bayesian", "hyperband", "random")
SEARCH_FILE = "search.json"  # the resolved search, in --out
_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python tuning/search.py",
        description="Search Mult-VAE^PR / Mult-DAE hyperparameters with "
        "KerasTuner by validation NDCG@100.",
    )
    p.add_argument("--data-dir", required=True, help="a prepared dataset")
    p.add_argument(
        "--dataset",
        help="preset the trials start from (default: the one named like "
        "--data-dir, else ml-20m, the paper's settings)",
    )
    p.add_argument("--model", choices=("vae", "dae"), default="vae")
    p.add_argument("--tuner", choices=TUNERS, default="bayesian")
    p.add_argument("--max-trials", type=int, default=20)
    p.add_argument(
        "--epochs", type=int, help="per trial (default: the preset's)"
    )
    p.add_argument("--out", help="default runs/search-DATASET-MODEL")
    space = p.add_argument_group(
        "search space",
        "ranges are MIN,MAX (uniform; --lr log-uniform), the others "
        "comma-separated choices; a flag left out keeps the preset's value "
        "unless it has a default",
    )
    space.add_argument("--dropout", default="0,0.8", help="default 0,0.8")
    space.add_argument(
        "--anneal-cap", help="β_cap, Mult-VAE only (default 0,1)"
    )
    space.add_argument(
        "--latent-dim", default="50,100,200,400", help="default 50,100,200,400"
    )
    space.add_argument("--lr", help="learning rate, e.g. 1e-4,1e-2")
    space.add_argument(
        "--total-anneal-steps", help="Mult-VAE only, e.g. 2000,10000,200000"
    )
    space.add_argument(
        "--hidden-width", help="width of the hidden layers, e.g. 300,600"
    )
    p.add_argument("--batch-size", type=int, help="default: the preset's")
    p.add_argument("--seed", type=int, help="seeds the tuner and the models")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start the search over (a worker never deletes anything)",
    )
    cli.add_verbose(p)
    return p.parse_args(argv)


def _numbers(flag: str, text: str | None, kind=float) -> tuple | None:
    if text is None:
        return None
    parts = [s.strip() for s in text.split(",")]
    if not any(parts):
        raise ValueError(f"{flag} is empty")
    try:
        return tuple(kind(s) for s in parts)
    except ValueError:
        bad = next(s for s in parts if not _parses(kind, s))
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"{flag}: {bad!r} is not {what}") from None


def _parses(kind, text: str) -> bool:
    try:
        kind(text)
    except ValueError:
        return False
    return True


def space_from_args(args: argparse.Namespace):
    """The :class:`~tuning.space.SearchSpace` of the flags."""
    from tuning import space as space_lib

    anneal_cap = _numbers("--anneal-cap", args.anneal_cap)
    if anneal_cap is None and args.model == "vae":
        anneal_cap = space_lib.SearchSpace.anneal_cap
    space = space_lib.SearchSpace(
        dropout=_numbers("--dropout", args.dropout),
        anneal_cap=anneal_cap,
        latent_dim=_numbers("--latent-dim", args.latent_dim, int),
        learning_rate=_numbers("--lr", args.lr),
        total_anneal_steps=_numbers(
            "--total-anneal-steps", args.total_anneal_steps, int
        ),
        hidden_width=_numbers("--hidden-width", args.hidden_width, int),
    )
    return space.for_model(args.model)


def base_config(args: argparse.Namespace):
    """The preset, switched to the DAE if asked, with the search's flags."""
    import dataclasses

    from tf_multvae import config as cfg

    preset = cfg.preset(args.dataset, args.model)
    model = preset.model
    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
    }
    train = dataclasses.replace(
        preset.train, **{k: v for k, v in overrides.items() if v is not None}
    )
    return cfg.RunConfig(args.dataset, model, train)


def role() -> str:
    """This process's part: "single", or KerasTuner's "chief" or "worker".

    Raises:
        ValueError: some but not all of the KERASTUNER_* variables are set.
    """
    given = [name for name in _ENV if os.environ.get(name)]
    if not given:
        return "single"
    if len(given) < len(_ENV):
        missing = ", ".join(n for n in _ENV if n not in given)
        raise ValueError(
            f"{', '.join(given)} set but not {missing}: distributed search "
            "needs all three"
        )
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def prepare_out(out: str, resolved: dict, overwrite: bool) -> None:
    """Makes ``out`` for this search, or checks that it holds this search.

    More trials than before continue the search; all else must match
    (``rundir.prepare``'s rule, with search.json as the configuration).

    Raises:
        ValueError: ``out`` holds another search (without ``overwrite``)
            or something that is not a search.
    """
    from tf_multvae import rundir

    rundir.prepare(
        out,
        resolved,
        overwrite,
        name=SEARCH_FILE,
        flag="--out",
        ignore=("max_trials",),
    )


def run(args: argparse.Namespace) -> dict | None:
    """Searches; returns the best trial (None on a worker).

    Raises:
        FileNotFoundError, ValueError: bad arguments or data directory.
    """
    import dataclasses

    from tf_multvae import config as cfg
    from tuning import hypermodel as hm
    from tuning import results
    from tuning import space as space_lib
    from tuning import tuners

    base = base_config(args)
    space = space_from_args(args)
    where = role()
    out = args.out
    hypermodel = hm.MultVAEHyperModel(
        base, args.data_dir, space, log_dir=os.path.join(out, "logs")
    )
    resolved = {
        "tuner": args.tuner,
        "max_trials": args.max_trials,
        "base": base.to_json(),
        "space": dataclasses.asdict(hypermodel.space),
        "data_dir": os.path.abspath(args.data_dir),
        "n_items": hypermodel.n_items,
    }
    if where == "worker":
        # Never deletes: on one machine --out may be the chief's too.
        os.makedirs(out, exist_ok=True)
    else:
        prepare_out(out, resolved, args.overwrite)
        if not os.path.isdir(hypermodel.log_dir):
            hypermodel.write_hparams_config()
    tuner = tuners.make_tuner(args.tuner, hypermodel, args.max_trials, out)
    if where != "worker":
        # KerasTuner reloads a project only when the tuner's file exists,
        # which it would otherwise first write after a trial's end.
        tuner.save()
    tuner.search(verbose=1 if sys.stdout.isatty() else 2)
    if where == "worker":
        return None
    names = hypermodel.space.names
    rows = results.trial_rows(tuner.oracle, names)
    best = results.best_row(rows)
    summary = None
    if best is not None:
        values = {n: best[n] for n in names}
        config = space_lib.apply(base, values)
        extra = {
            "--batch-size": args.batch_size,
            "--seed": args.seed,
            # The preset's protocol, or longer if the trials trained longer.
            "--epochs": max(
                cfg.preset(args.dataset, args.model).train.epochs,
                base.train.epochs,
            ),
        }
        summary = {
            "trial": best["trial"],
            "hyperparameters": values,
            **{m: best[m] for m in results.METRICS},
            "command": results.retrain_command(
                config,
                names,
                args.data_dir,
                os.path.join(out, "retrained"),
                {k: v for k, v in extra.items() if v is not None},
            ),
        }
    results.write(out, rows, names, summary)
    return summary


@cli.command("search")
def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tf_multvae import config as cfg

    if args.dataset is None:
        name = os.path.basename(os.path.normpath(args.data_dir))
        args.dataset = name if name in cfg.PRESETS else "ml-20m"
    elif args.dataset not in cfg.PRESETS:
        return cli.fail(
            f"--dataset must be one of {', '.join(sorted(cfg.PRESETS))}"
            f", not {args.dataset!r}"
        )
    if args.out is None:
        args.out = os.path.join("runs", f"search-{args.dataset}-{args.model}")
    try:
        if args.max_trials < 1:
            raise ValueError(
                f"--max-trials must be >= 1, got {args.max_trials}"
            )
        best = run(args)
    except cli.USER_ERRORS as err:
        return cli.fail(err)
    except KeyboardInterrupt:
        print(
            "interrupted: run the same command again to continue the search",
            file=sys.stderr,
        )
        return 130
    if best is None:
        if role() == "worker":
            print(f"worker {os.environ['KERASTUNER_TUNER_ID']}: search done")
        else:
            print("no trial completed", file=sys.stderr)
            return 1
        return 0
    shown = ", ".join(f"{k} {v}" for k, v in best["hyperparameters"].items())
    print(
        f"best trial {best['trial']}: validation NDCG@100 "
        f"{best['val_ndcg_at_100']:.4f} (epoch {best['best_epoch']}); {shown}"
    )
    print(f"retrain:  {best['command']}")
    print(f"results:  {os.path.abspath(args.out)}")
    print(f"TensorBoard: tensorboard --logdir {os.path.abspath(args.out)}/logs")
    return 0


if __name__ == "__main__":
    cli.quiet_process("search")
    sys.exit(cli.end_process(main()))
