"""Evaluation (tf_multvae.reports.evaluation) and
``python -m tf_multvae.reports.evaluate`` against loop-based numpy
references (references.ranking, recall, ndcg), on conftest's
report_dataset and its runs."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import references
import tensorflow as tf

from tf_multvae import datadir
from tf_multvae import metrics
from tf_multvae import rundir
from tf_multvae.reports import evaluate
from tf_multvae.reports import evaluation
from tf_multvae.reports import runs


class IntegerScorer:
    """Scores x_u W with small integers in W: exact in float32, many ties."""

    def __init__(self, n_items: int):
        rng = np.random.default_rng(7)
        self.w = rng.integers(0, 3, (n_items, n_items)).astype(np.float32)

    def score(self, item_ids):
        x = tf.reduce_sum(tf.one_hot(item_ids, self.w.shape[0]), axis=1)
        return tf.matmul(x, self.w)  # one_hot(-1) is zero: padding drops


def test_metric_names_have_one_spelling():
    assert metrics.metric_name("ndcg", 100) == "ndcg_at_100"
    assert metrics.PAPER_METRICS == (
        "recall_at_20",
        "recall_at_50",
        "ndcg_at_100",
    )
    assert metrics.metric_names([50, 5]) == (
        "recall_at_5",
        "recall_at_50",
        "ndcg_at_5",
        "ndcg_at_50",
    )
    with pytest.raises(ValueError, match="metric must be one of"):
        metrics.metric_name("map", 10)
    with pytest.raises(ValueError, match="must be >= 1"):
        metrics.cutoffs([0])


def test_per_user_metrics_match_numpy_loops(report_dataset):
    n_items = datadir.load_info(report_dataset).n_items
    scorer = IntegerScorer(n_items)
    ks = (1, 5, 20, 100)
    got = evaluation.per_user_metrics(scorer, report_dataset, "test", 500, ks)
    records = references.read_split(report_dataset, "test")
    assert [r["user_id"] for r in records] == [
        u.decode() for u in got["user_id"]
    ]
    x = references.clicks([r["fold_in"] for r in records], n_items)
    scores = x @ scorer.w.astype(np.float64)
    assert len({float(s) for s in scores[0]}) < n_items / 2  # ties
    for u, record in enumerate(records):
        assert got["n_fold_in"][u] == len(record["fold_in"])
        assert got["n_heldout"][u] == len(record["heldout"])
        assert got["scored"][u] == bool(record["heldout"])
        if not record["heldout"]:
            continue
        ranked = references.ranking(scores[u], record["fold_in"])
        for k in ks:
            want_r = references.recall(ranked, record["heldout"], k)
            want_n = references.ndcg(ranked, record["heldout"], k)
            assert got[f"recall_at_{k}"][u] == pytest.approx(want_r, abs=1e-6)
            assert got[f"ndcg_at_{k}"][u] == pytest.approx(want_n, abs=1e-6)


def test_chunks_of_users_give_the_same_numbers(report_dataset):
    """Ranking 7 users at a time equals ranking all at once."""
    scorer = IntegerScorer(datadir.load_info(report_dataset).n_items)
    whole = evaluation.per_user_metrics(
        scorer, report_dataset, "validation", 500
    )
    chunks = evaluation.per_user_metrics(
        scorer, report_dataset, "validation", 7
    )
    assert whole.keys() == chunks.keys()
    for key in whole:
        np.testing.assert_array_equal(whole[key], chunks[key])


def test_evaluate_cli_writes_table_json_and_per_user_file(
    vae_run, report_dataset, capsys
):
    code = evaluate.main(["--run-dir", vae_run, "--k", "10,100"])
    assert code == 0
    printed = capsys.readouterr().out
    for name in ("recall_at_10", "ndcg_at_10", "recall_at_100", "ndcg_at_100"):
        assert name in printed
    result = json.loads(open(rundir.summary_path(vae_run, "test")).read())
    assert result["split"] == "test" and result["k"] == [10, 100]
    table = runs.read_per_user(rundir.per_user_path(vae_run, "test"))
    records = references.read_split(report_dataset, "test")
    assert list(table["user_id"]) == [r["user_id"] for r in records]
    assert list(table["n_fold_in"]) == [len(r["fold_in"]) for r in records]
    assert list(table["n_heldout"]) == [len(r["heldout"]) for r in records]
    scored = table["scored"]
    assert result["metrics"]["users"] == scored.sum()
    for name in ("recall_at_10", "ndcg_at_10", "recall_at_100", "ndcg_at_100"):
        values = table[name][scored]
        assert np.isnan(table[name][~scored]).all()
        want = result["metrics"][name]
        assert want["mean"] == pytest.approx(values.mean(), abs=1e-6)
        assert want["stderr"] == pytest.approx(
            values.std() / np.sqrt(values.size), abs=1e-6
        )
    # The reloaded best model scores as training's own test evaluation.
    trained = json.loads(open(os.path.join(vae_run, "metrics.json")).read())
    assert result["metrics"]["ndcg_at_100"]["mean"] == pytest.approx(
        trained["test"]["ndcg_at_100"]["mean"], abs=1e-6
    )
    # And as numpy loops on its logits.
    model = keras.saving.load_model(os.path.join(vae_run, "best.keras"))
    fold_in = tf.ragged.constant([r["fold_in"] for r in records])
    logits = model.score(fold_in.to_tensor(-1)).numpy()
    for u, record in enumerate(records[:10]):
        if record["heldout"]:
            ranked = references.ranking(logits[u], record["fold_in"])
            assert table["ndcg_at_10"][u] == pytest.approx(
                references.ndcg(ranked, record["heldout"], 10), abs=1e-5
            )


def test_evaluate_validation_split(vae_run, capsys):
    code = evaluate.main(["--run-dir", vae_run, "--split", "validation"])
    assert code == 0
    assert os.path.exists(rundir.per_user_path(vae_run, "validation"))
    assert "validation users" in capsys.readouterr().out


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--k", "1000"], "cutoff k=1000 exceeds the"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
    ],
)
def test_bad_arguments_are_named(vae_run, capsys, flags, message):
    assert evaluate.main(["--run-dir", vae_run, *flags]) == 2
    assert message in capsys.readouterr().err


def test_not_a_run_directory(tmp_path, capsys):
    assert evaluate.main(["--run-dir", str(tmp_path)]) == 2
    assert "is not a finished run directory" in capsys.readouterr().err


def test_cutoff_list_must_be_integers(vae_run):
    with pytest.raises(SystemExit) as exit_:
        evaluate.main(["--run-dir", vae_run, "--k", "20,x"])
    assert exit_.value.code == 2


def test_a_baseline_run_is_refit_and_scores_as_when_it_was_made(ease_run):
    run_dir = ease_run
    result = evaluate.run(run_dir, ks=(20, 50, 100))
    made = rundir.read_json(run_dir, rundir.METRICS)["test"]
    for name in ("recall_at_20", "recall_at_50", "ndcg_at_100"):
        assert result["metrics"][name]["mean"] == pytest.approx(
            made[name]["mean"], abs=1e-6
        )
