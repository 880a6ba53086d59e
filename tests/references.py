"""Independent references the tests compare tf_multvae's code against.

Each is written from the definitions of the papers (Mult-VAE^PR, Liang et
al. 2018: the likelihoods of Section 2.1, Recall@k and NDCG@k of Section
4.2; EASE, Steck 2019) with numpy and plain loops, not from tf_multvae's
code: this module imports nothing of tf_multvae but
``tf_multvae.features`` (the padding value and the record layout).

- Records and clicks: :func:`read_split` (the shards parsed with
  ``tf.train.Example``), :func:`clicks`, :func:`normalized_clicks`.
- Ranking and metrics: :func:`ranking` (fold-in items masked, ties:
  lower item index first, as ``np.argsort(-scores, kind="stable")``),
  :func:`recall`, :func:`ndcg`, :func:`paper_metrics`; the leave-one-out
  protocol's :func:`ncf_hit_and_ndcg`, NCF's evaluate.py step by step.
- Likelihoods (per user): :func:`log_softmax`, :func:`multinomial_nll`,
  :func:`gaussian_nll`, :func:`logistic_nll`.
- Baselines and reports: :func:`ease` (the closed form in float64),
  :func:`quantile_groups` (Figure 3's activity groups).
- Serving: :func:`serving_top_k`, :func:`as_ids`,
  :func:`assert_same_ranking`.

Item lists are lists or ``int64`` rows padded with ``features.PAD``.
"""

from __future__ import annotations

import glob
import math
import os

import numpy as np
import tensorflow as tf

from tf_multvae import features

PAD = features.PAD
PAPER_METRICS = ("recall_at_20", "recall_at_50", "ndcg_at_100")

# Records and clicks ---------------------------------------------------------


def read_split(data_dir: str, split: str) -> list[dict]:
    """Every record of a split, in file order, parsed with tf.train.Example.

    Returns:
        ``[{"user_id": str, "items": [...], "fold_in": [...],
        "heldout": [...]}]`` with item indices.
    """
    out = []
    pattern = os.path.join(data_dir, features.shard_pattern(split))
    for path in sorted(glob.glob(pattern)):
        for record in tf.data.TFRecordDataset(path):
            example = tf.train.Example.FromString(record.numpy())
            feature = example.features.feature
            row = {
                features.USER_ID: feature[features.USER_ID]
                .bytes_list.value[0]
                .decode()
            }
            for key in features.ITEM_KEYS:
                row[key] = list(feature[key].int64_list.value)
            out.append(row)
    return out


def clicks(rows, n_items: int) -> np.ndarray:
    """float64 ``[len(rows), n_items]``: 1 at each item of each row.

    Args:
        rows: per user, a list of item indices or a row padded with PAD.
    """
    x = np.zeros((len(rows), n_items))
    for u, row in enumerate(rows):
        for i in row:
            if i != PAD:
                x[u, i] = 1.0
    return x


def normalized_clicks(ids, n_items: int) -> np.ndarray:
    """The encoder's input: :func:`clicks` with L2-normalized rows (an
    empty row stays zero)."""
    x = clicks(ids, n_items)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


# Ranking and metrics --------------------------------------------------------


def ranking(scores: np.ndarray, fold_in) -> np.ndarray:
    """One user's items best first, fold-in items last (scored -inf);
    ties: lower item index first."""
    masked = np.asarray(scores, np.float64).copy()
    for i in fold_in:
        masked[i] = -np.inf
    return np.argsort(-masked, kind="stable")


def recall(ranked: np.ndarray, heldout, k: int) -> float:
    """Recall@k = hits in the top k / min(k, |heldout|); 0 without
    held-out items."""
    targets = set(heldout)
    if not targets:
        return 0.0
    hits = 0
    for item in ranked[:k]:
        if item in targets:
            hits += 1
    return hits / min(k, len(heldout))


def ndcg(ranked: np.ndarray, heldout, k: int) -> float:
    """NDCG@k = DCG@k / IDCG@k: a hit at rank r (1-based) adds
    1 / log2(r + 1); the ideal ranks min(k, |heldout|) hits first.
    0 without held-out items."""
    targets = set(heldout)
    if not targets:
        return 0.0
    dcg = 0.0
    for r, item in enumerate(ranked[:k], start=1):
        if item in targets:
            dcg += 1.0 / math.log2(r + 1)
    idcg = 0.0
    for r in range(1, min(k, len(heldout)) + 1):
        idcg += 1.0 / math.log2(r + 1)
    return dcg / idcg


def paper_metrics(scores: np.ndarray, records: list[dict]) -> dict:
    """Recall@20, Recall@50 and NDCG@100 of each user with held-out items.

    Args:
        scores: ``[len(records), n_items]``, one row per record.
        records: dicts with ``"fold_in"`` and ``"heldout"`` item lists.

    Returns:
        ``{name: float64 [scored users]}`` for the names of PAPER_METRICS.
    """
    out = {name: [] for name in PAPER_METRICS}
    for u, record in enumerate(records):
        heldout = record["heldout"]
        if not heldout:
            continue
        ranked = ranking(scores[u], record["fold_in"])
        out["recall_at_20"].append(recall(ranked, heldout, 20))
        out["recall_at_50"].append(recall(ranked, heldout, 50))
        out["ndcg_at_100"].append(ndcg(ranked, heldout, 100))
    return {name: np.array(values) for name, values in out.items()}


def ncf_hit_and_ndcg(
    scores: np.ndarray, negatives, item: int, k: int
) -> tuple[float, float]:
    """HR@k and NDCG@k of one user as NCF's evaluate.py computes them.

    He et al.'s ``eval_one_rating``: the negatives, then the test item
    appended, scored into a dict keyed by item (a repeated item keeps
    its first place and its last score, which is the same score), the
    top k by ``heapq.nlargest`` over the dict (ties: dict order), then
    ``getHitRatio`` and ``getNDCG``.
    """
    import heapq

    items = [int(i) for i in negatives if i != PAD] + [int(item)]
    map_item_score = {}
    for i in items:
        map_item_score[i] = float(scores[i])
    ranklist = heapq.nlargest(k, map_item_score, key=map_item_score.get)
    hit = 1.0 if item in ranklist else 0.0
    gain = 0.0
    for position, ranked in enumerate(ranklist):
        if ranked == item:
            gain = math.log(2) / math.log(position + 2)
    return hit, gain


# Likelihoods ----------------------------------------------------------------


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, shifted by the maximum."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def multinomial_nll(logits: np.ndarray, ids) -> np.ndarray:
    """Per user: -sum over the clicked items i of log softmax(f_u)_i."""
    log_p = log_softmax(np.asarray(logits, np.float64))
    out = np.zeros(len(ids))
    for u, row in enumerate(ids):
        for i in row:
            if i != PAD:
                out[u] -= log_p[u, i]
    return out


def gaussian_nll(logits: np.ndarray, ids) -> np.ndarray:
    """Per user: sum over all items of (x_ui - f_ui)^2 / 2 (c_ui = 1)."""
    x = clicks(ids, logits.shape[1])
    out = np.zeros(logits.shape[0])
    for u in range(logits.shape[0]):
        for i in range(logits.shape[1]):
            out[u] += 0.5 * (x[u, i] - logits[u, i]) ** 2
    return out


def logistic_nll(logits: np.ndarray, ids) -> np.ndarray:
    """Per user: the binary cross-entropy of sigmoid(f_ui) and x_ui, summed
    over all items, in float64."""
    x = clicks(ids, logits.shape[1])
    out = np.zeros(logits.shape[0])
    for u in range(logits.shape[0]):
        for i in range(logits.shape[1]):
            p = 1.0 / (1.0 + np.exp(-np.float64(logits[u, i])))
            out[u] -= x[u, i] * np.log(p) + (1 - x[u, i]) * np.log(1 - p)
    return out


# Baselines and reports ------------------------------------------------------


def ease(x: np.ndarray, l2: float) -> np.ndarray:
    """Steck's closed form in float64: P = (X^T X + l2 I)^-1,
    B = -P / diag(P) column-wise, diag(B) = 0; scores are x_u B."""
    p = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


def quantile_groups(counts: np.ndarray, n_groups: int = 5) -> np.ndarray:
    """A user's group: the last quantile edge at or below its count."""
    edges = np.quantile(counts, np.linspace(0, 1, n_groups + 1))
    out = np.empty(len(counts), np.int64)
    for u, c in enumerate(counts):
        out[u] = min(
            max(g for g in range(n_groups + 1) if edges[g] <= c), n_groups - 1
        )
    return out


# Serving --------------------------------------------------------------------


def serving_top_k(model, indices: np.ndarray, k: int):
    """numpy top-k of an in-memory model's scores, input items masked.

    Args:
        model: has ``score(int64 [batch, L]) -> [batch, n_items]``.
        indices: int64 [batch, L] distinct known items, -1 padded.

    Returns:
        (int64 [batch, k] item indices, float32 [batch, k] scores); ties:
        lower index first.
    """
    scores = model.score(tf.constant(indices, tf.int64)).numpy()
    for u, row in enumerate(indices):
        scores[u, row[row >= 0]] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return top, np.take_along_axis(scores, top, axis=1)


def as_ids(indices: np.ndarray, vocab: np.ndarray) -> np.ndarray:
    """Item indices -> raw ids, -1 -> "" (object [batch, L])."""
    return np.where(indices >= 0, vocab[np.maximum(indices, 0)], "")


def assert_same_ranking(out: dict, model, indices, vocab, k: int) -> None:
    """A serving output (item_indices, scores, item_ids) is the
    :func:`serving_top_k` of the same users."""
    top, scores = serving_top_k(model, indices, k)
    np.testing.assert_array_equal(np.asarray(out["item_indices"]), top)
    np.testing.assert_allclose(
        np.asarray(out["scores"], np.float32), scores, rtol=1e-5, atol=1e-5
    )
    ids = [
        [i.decode() if isinstance(i, bytes) else i for i in row]
        for row in np.asarray(out["item_ids"], dtype=object)
    ]
    assert ids == vocab[top].tolist()
