"""``python -m benchmarks.prep_speed``: Beam vs pandas data preparation.

Times the Beam preparation against a plain pandas one at ML-20M shape.
Generates (or reuses) a synthetic ``ratings.csv`` of ``--rows`` rows, then
runs ``python -m benchmarks.prep_pandas`` and ``python -m data_prep`` on
it, each in a subprocess from the repository root, and prints wall
seconds, raw rows per second and peak memory. Peak memory is the largest
summed RSS of the process and all its descendants, sampled every 0.1 s
(shared pages count once per process, so multi-process runs are
overstated rather than understated). The last line of stdout is one JSON
object with the figures.

    python -m benchmarks.prep_speed                    # 20M rows, both
    python -m benchmarks.prep_speed --rows 300000 --users 3000 \\
        --items 2000 --skip-beam

Run it from the repository root (``benchmarks`` is not an installed
package).

The target on a 2-core machine: Beam within 3x the pandas time
and under 8 GB peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import psutil

from benchmarks.common import cpu
from data_prep import synthetic

REPO = pathlib.Path(__file__).resolve().parents[1]
TIME_RATIO_TARGET = 3.0
PEAK_MB_TARGET = 8 * 1024


def generate(
    workdir: str, rows: int, users: int, items: int, seed: int
) -> tuple[str, dict]:
    """Writes the synthetic csv into ``workdir`` unless already there.

    Returns:
        (path, stats): the csv and :func:`synthetic.write_ratings_csv`'s
        stats plus ``seconds`` (0.0 when the cached file was reused).
    """
    name = f"ratings-v{synthetic.VERSION}-r{rows}-u{users}-i{items}-s{seed}"
    path = os.path.join(workdir, name + ".csv")
    stats_path = os.path.join(workdir, name + ".json")
    if os.path.exists(path) and os.path.exists(stats_path):
        with open(stats_path) as f:
            return path, {**json.load(f), "seconds": 0.0, "cached": True}
    start = time.perf_counter()
    stats = synthetic.write_ratings_csv(
        path + ".tmp",
        n_users=users,
        n_items=items,
        clicks_per_user=rows / users,
        seed=seed,
    )
    os.replace(path + ".tmp", path)
    with open(stats_path, "w") as f:
        json.dump(stats, f)
    seconds = time.perf_counter() - start
    return path, {**stats, "seconds": seconds, "cached": False}


def measure(cmd: list[str], log_path: str, interval: float = 0.1) -> dict:
    """Runs ``cmd`` in the repository root, sampling its process tree's RSS.

    Args:
        cmd: the command line; file paths in it must be absolute.
        log_path: where its stdout and stderr go.
        interval: seconds between memory samples.

    Returns:
        dict with ``seconds`` (wall), ``peak_rss_mb`` and ``returncode``.
    """
    peak = [0]
    done = threading.Event()
    with open(log_path, "wb") as log:
        start = time.perf_counter()
        proc = psutil.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)

        def sample() -> None:
            while not done.is_set():
                total = 0
                try:
                    tree = [proc] + proc.children(recursive=True)
                except psutil.Error:
                    tree = []
                for p in tree:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass  # exited between listing and reading
                peak[0] = max(peak[0], total)
                done.wait(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        returncode = proc.wait()
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    return {
        "seconds": seconds,
        "peak_rss_mb": peak[0] / 2**20,
        "returncode": returncode,
    }


def run(
    rows: int = 20_000_000,
    users: int = 138_000,
    items: int = 27_000,
    workdir: str | None = None,
    seed: int = 0,
    pandas: bool = True,
    beam: bool = True,
    beam_args: tuple[str, ...] = (),
) -> dict:
    """Generates the data, times both preparations and prints a table.

    Returns:
        The figures printed as the JSON line.
    """
    workdir = os.path.abspath(
        workdir or os.path.join(tempfile.gettempdir(), "tf_multvae_benchmark")
    )
    os.makedirs(workdir, exist_ok=True)
    raw, data = generate(workdir, rows, users, items, seed)
    print(
        f"data: {data['rows']:,} rows, {data['users']:,} users, "
        f"{data['items']:,} items ({raw}; generated in "
        f"{data['seconds']:.1f} s{', cached' if data['cached'] else ''})",
        flush=True,
    )
    commands = {}
    heldout = str(min(10_000, users // 10))  # the paper's 10,000 at ML-20M
    if pandas:
        out = os.path.join(workdir, "prepared-pandas")
        shutil.rmtree(out, ignore_errors=True)
        commands["pandas"] = [
            *(sys.executable, "-m", "benchmarks.prep_pandas"),
            *("--raw", raw, "--out", out, "--heldout-users", heldout),
        ]
    if beam:
        out = os.path.join(workdir, "prepared-beam")
        commands["beam"] = [
            *(sys.executable, "-m", "data_prep", "--dataset", "ml-20m"),
            *("--raw", raw, "--out", out, "--overwrite"),
            *("--heldout-users", heldout, *beam_args),
        ]
    results = {}
    for name, cmd in commands.items():
        log = os.path.join(workdir, f"{name}.log")
        result = measure(cmd, log)
        result["rows_per_s"] = data["rows"] / result["seconds"]
        result["log"] = log
        results[name] = result
        if result["returncode"] != 0:
            with open(log, errors="replace") as f:
                tail = f.read()[-3000:]
            print(f"{name} FAILED (exit {result['returncode']}):\n{tail}")

    header = ("implementation", "seconds", "rows/s", "peak RSS MB")
    print("{:<16}{:>10}{:>14}{:>14}".format(*header))
    for name, r in results.items():
        status = "" if r["returncode"] == 0 else "  (failed)"
        print(
            f"{name:<16}{r['seconds']:>10.1f}{r['rows_per_s']:>14,.0f}"
            f"{r['peak_rss_mb']:>14,.0f}{status}"
        )
    summary = {
        "rows": data["rows"],
        **cpu(),
        "users": data["users"],
        "items": data["items"],
        "generate_seconds": data["seconds"],
        **results,
    }
    ok = all(r["returncode"] == 0 for r in results.values())
    if ok and {"beam", "pandas"} <= results.keys():
        ratio = results["beam"]["seconds"] / results["pandas"]["seconds"]
        meets = (
            ratio <= TIME_RATIO_TARGET
            and results["beam"]["peak_rss_mb"] < PEAK_MB_TARGET
        )
        print(
            f"beam/pandas time ratio: {ratio:.2f} (target <= "
            f"{TIME_RATIO_TARGET:g}, peak < {PEAK_MB_TARGET:,} MB): "
            f"{'met' if meets else 'NOT met'}"
        )
        summary.update(beam_pandas_time_ratio=ratio, meets_target=meets)
    print(json.dumps(summary), flush=True)
    return summary


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.prep_speed",
        description="Beam vs pandas preparation benchmark.",
    )
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--users", type=int, default=138_000)
    parser.add_argument("--items", type=int, default=27_000)
    parser.add_argument(
        "--workdir", help="where the csv is cached (default: a temp dir)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-beam", action="store_true")
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument(
        "--beam-arg",
        action="append",
        default=[],
        help="extra argument for the Beam pipeline (repeatable), e.g. "
        "--beam-arg=--direct_num_workers=2",
    )
    args = parser.parse_args(argv)
    return run(
        rows=args.rows,
        users=args.users,
        items=args.items,
        workdir=args.workdir,
        seed=args.seed,
        pandas=not args.skip_pandas,
        beam=not args.skip_beam,
        beam_args=tuple(args.beam_arg),
    )


if __name__ == "__main__":
    main()
