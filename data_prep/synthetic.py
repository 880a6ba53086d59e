"""The ``synthetic`` dataset: raw ratings with planted taste groups.

Writes a ``ratings.csv`` in the MovieLens-20M layout (header
``userId,movieId,rating,timestamp``, rows grouped by user, users ascending,
timestamps increasing within a user) with structure that a collaborative
model finds and a popularity ranking cannot: Zipf-like item popularity
(with a jitter that leaves some items nearly unrated); ``n_groups`` taste
groups that each favour a random ~7% of the items; users in one group or a
mixture of two, with a lognormal number of ratings (some below 5), drawn
without replacement from their taste mixed with plain popularity. In-taste
ratings are mostly >= 4 and popularity "noise" ratings <= 3, so the paper's
``rating > 3.5`` threshold matters (it keeps about half the rows).

Users are generated in chunks with vectorized numpy and written with
pyarrow's CSV writer: ML-20M size (20M rows) takes about 25 s and 250 MB
here. Same arguments, same bytes.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

VERSION = 1  # bump whenever the same arguments would give other bytes
HEADER = b"userId,movieId,rating,timestamp\n"
RATINGS = tuple(f"{k / 2:.1f}" for k in range(1, 11))  # "0.5" .. "5.0"
_TASTE_P = np.array([0, 0, 0, 0, 0, 0.06, 0.09, 0.35, 0.2, 0.3])  # 3.0..5.0
_NOISE_P = np.array([0.03, 0.07, 0.05, 0.15, 0.2, 0.5, 0, 0, 0, 0])  # ..3.0
_NOISE = 0.35  # share of a user's draws from plain popularity
_AFFINITY_SHARE = 0.07  # share of items each group favours
_GENERAL = 0.25  # share of popularity inside a group's taste
_ACTIVITY_SIGMA = 1.1  # lognormal sigma of ratings per user (heavy tail)
_ROWS_PER_CHUNK = 400_000
_T0, _T1 = 1_000_000_000, 1_420_000_000  # 2001-09 .. 2014-12, 10 digits


def _item_model(
    n_items: int, n_groups: int, rng: np.random.Generator
) -> np.ndarray:
    """Item distributions of the taste groups and of plain popularity.

    Popularity is Zipf-Mandelbrot, ``1 / (rank + r0)``, times a jitter in
    (0, 1] that leaves some items nearly unrated. Group ``g`` mixes
    popularity with a distribution over its favoured items, flattened to
    ``popularity ** 0.5`` so that obscure favourites are drawn too.

    Returns:
        float64 ``[n_groups + 1, n_items]``, rows summing to 1; rows
        ``0 .. n_groups - 1`` are the groups, row ``n_groups`` popularity.
    """
    ranks = rng.permutation(n_items) + 1.0
    jitter = np.minimum(1.0, rng.lognormal(0.0, 2.0, n_items))
    pop = jitter / (ranks + 1.0 + n_items / 3000)
    pop /= pop.sum()
    n_fav = max(1, round(_AFFINITY_SHARE * n_items))
    probs = np.zeros((n_groups + 1, n_items))
    for g in range(n_groups):
        fav = rng.choice(n_items, n_fav, replace=False)
        probs[g, fav] = np.sqrt(pop[fav]) / np.sqrt(pop[fav]).sum()
    probs[:n_groups] = (1 - _GENERAL) * probs[:n_groups] + _GENERAL * pop
    probs[n_groups] = pop
    return probs


def _rank_within_user(users: np.ndarray, n_users: int) -> np.ndarray:
    """int64 ``[n]``: each row's place among its user's rows (0 = first).

    ``users`` is int64 ``[n]`` in ascending order, values < ``n_users``.
    """
    counts = np.bincount(users, minlength=n_users)
    starts = np.cumsum(counts) - counts  # [n_users]
    return np.arange(users.size) - starts[users]


def _distinct_draws(
    cdf: np.ndarray,
    comp_p: np.ndarray,
    comps: np.ndarray,
    k: np.ndarray,
    rng: np.random.Generator,
    rounds: int = 4,
    oversample: float = 1.5,
) -> tuple[np.ndarray, np.ndarray]:
    """First ``k[u]`` distinct items of iid draws from each user's mixture.

    The first k distinct values of iid draws are a sample without
    replacement. Users still short after ``rounds`` are returned as short.

    Args:
        cdf: float64 ``[n_comp, n_items]``, the components' CDFs.
        comp_p: float64 ``[n_users, 3]``, mixture weights over ``comps``.
        comps: int64 ``[n_users, 3]``, component ids of each user.
        k: int64 ``[n_users]``, distinct items wanted per user.
        rng: the chunk's generator.
        rounds: oversampling rounds before giving up.
        oversample: draws per missing item in each round.

    Returns:
        (users, items): int64 ``[n]`` each, grouped by user, draw order.
    """
    n_items = cdf.shape[1]
    cum = np.cumsum(comp_p, axis=1)
    users = np.empty(0, np.int64)
    items = np.empty(0, np.int64)
    need = k.copy()
    for _ in range(rounds):
        todo = np.flatnonzero(need > 0)
        if todo.size == 0:
            break
        n_draw = np.ceil(oversample * need[todo]).astype(np.int64) + 8
        u = np.repeat(todo, n_draw)
        r = rng.random(u.size)
        which = (r > cum[u, 0]).astype(np.int64) + (r > cum[u, 1])
        c = comps[u, which]
        x = rng.random(u.size)
        it = np.empty(u.size, np.int64)
        for j in np.unique(c):  # one small CDF at a time stays in cache
            mask = c == j
            it[mask] = np.searchsorted(cdf[j], x[mask], side="right")
        users = np.concatenate([users, u])
        items = np.concatenate([items, it])
        order = np.argsort(users, kind="stable")
        users, items = users[order], items[order]
        _, first = np.unique(users * n_items + items, return_index=True)
        first.sort()
        users, items = users[first], items[first]
        keep = _rank_within_user(users, k.size) < k[users]
        users, items = users[keep], items[keep]
        need = k - np.bincount(users, minlength=k.size)
    return users, items


def _exact_draws(
    probs: np.ndarray,
    comp_p: np.ndarray,
    comps: np.ndarray,
    k: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Sampling without replacement by exponential races (heavy users).

    Args:
        probs: float64 ``[n_comp, n_items]`` component distributions.
        comp_p, comps, k: as in :func:`_distinct_draws`, for these users.
        rng: the chunk's generator.

    Returns:
        (users, items): int64 ``[sum(k)]`` each, grouped by user, draw order.
    """
    users, items = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for u in range(k.size):
        p = comp_p[u] @ probs[comps[u]]  # [n_items]
        key = rng.exponential(size=p.size) / p
        top = np.argpartition(key, k[u] - 1)[: k[u]]
        users.append(np.full(k[u], u))
        items.append(top[np.argsort(key[top])])
    return np.concatenate(users), np.concatenate(items)


def _chunk(
    probs: np.ndarray,
    cdf: np.ndarray,
    n_users: int,
    clicks_per_user: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, ...]:
    """Ratings of ``n_users`` new users.

    Returns:
        (users, items, rating, ts): int64 ``[n]`` each, grouped by user
        (0-based within the chunk), increasing ``ts`` within a user;
        ``items`` 0-based, ``rating`` an index into :data:`RATINGS`.
    """
    n_groups, n_items = probs.shape[0] - 1, probs.shape[1]
    mu = np.log(clicks_per_user) - _ACTIVITY_SIGMA**2 / 2
    k = np.rint(rng.lognormal(mu, _ACTIVITY_SIGMA, n_users)).astype(np.int64)
    k = np.clip(k, 1, max(1, n_items // 2))
    # Components: two taste groups (the second one's weight is often 0)
    # and plain popularity; comps and comp_p are [n_users, 3].
    comps = rng.integers(0, n_groups, (n_users, 3))
    comps[:, 2] = n_groups
    second = rng.uniform(0.1, 0.5, n_users) * (rng.random(n_users) < 0.4)
    comp_p = np.stack([1 - second, second, np.zeros(n_users)], axis=1)
    comp_p = comp_p * (1 - _NOISE) + [0, 0, _NOISE]

    light = np.flatnonzero(k <= max(8, n_items // 20))
    users, items = _distinct_draws(
        cdf, comp_p[light], comps[light], k[light], rng
    )
    users = light[users]
    # Heavy users, and light ones still short, get exact draws instead.
    short = np.flatnonzero(np.bincount(users, minlength=n_users) < k)
    keep = ~np.isin(users, short)
    s_users, s_items = _exact_draws(
        probs, comp_p[short], comps[short], k[short], rng
    )
    users = np.concatenate([users[keep], short[s_users]])
    items = np.concatenate([items[keep], s_items])
    order = np.argsort(users, kind="stable")
    users, items = users[order], items[order]

    # In taste or noise: drawn from the posterior of the components.
    mix = np.empty((users.size, 3))
    for j in range(3):
        mix[:, j] = comp_p[users, j] * probs[comps[users, j], items]
    noise = rng.random(users.size) * mix.sum(axis=1) < mix[:, 2]
    rating = np.where(
        noise,
        rng.choice(10, users.size, p=_NOISE_P),
        rng.choice(10, users.size, p=_TASTE_P),
    )
    # Strictly increasing timestamps: positive gaps after a start chosen so
    # that the user's last rating still falls before _T1.
    scale = rng.uniform(1e5, 4e7, n_users) / k  # mean gap, seconds
    gaps = 1 + rng.exponential(scale[users]).astype(np.int64)
    cum = np.cumsum(gaps)
    first = np.arange(users.size) - _rank_within_user(users, n_users)
    elapsed = cum - cum[first] + gaps[first]  # [n], own gaps only
    span = np.zeros(n_users, np.int64)
    np.maximum.at(span, users, elapsed)
    room = np.maximum(_T1 - _T0 - span, 0)
    start = _T0 + (rng.random(n_users) * room).astype(np.int64)
    ts = start[users] + elapsed
    return users, items, rating, ts


def write_ratings_csv(
    path: str,
    n_users: int = 10_000,
    n_items: int = 3_000,
    clicks_per_user: float = 60.0,
    n_groups: int = 20,
    seed: int = 0,
) -> dict:
    """Writes a synthetic ``ratings.csv`` in the MovieLens-20M layout.

    Args:
        path: the file to write (overwritten).
        n_users: users, ids ``1..n_users``; every one gets at least 1 row.
        n_items: items, ids ``1..n_items``; rare ones may get no row.
        clicks_per_user: mean ratings (rows) per user.
        n_groups: latent taste groups.
        seed: the one seed; same arguments give a byte-identical file.

    Returns:
        dict with ``rows``, ``users``, ``items`` (distinct ids used) and
        ``clicks`` (rows with rating > 3.5).
    """
    if n_users < 1 or n_items < 1 or n_groups < 1 or clicks_per_user <= 0:
        raise ValueError("n_users, n_items, n_groups, clicks_per_user > 0")
    probs = _item_model(n_items, n_groups, np.random.default_rng([seed, 0]))
    cdf = np.cumsum(probs, axis=1)
    cdf[:, -1] = 1.0
    chunk_users = max(1, int(_ROWS_PER_CHUNK / clicks_per_user))
    used = np.zeros(n_items, bool)
    rows = clicks = 0
    options = pcsv.WriteOptions(include_header=False, quoting_style="none")
    rating_text = pa.array(RATINGS)
    with open(path, "wb") as f:
        f.write(HEADER)
        for chunk_id, first in enumerate(range(0, n_users, chunk_users)):
            rng = np.random.default_rng([seed, 1, chunk_id])
            size = min(chunk_users, n_users - first)
            users, items, rating, ts = _chunk(
                probs, cdf, size, clicks_per_user, rng
            )
            table = pa.table(
                {
                    "userId": users + first + 1,
                    "movieId": items + 1,
                    "rating": rating_text.take(pa.array(rating)),
                    "timestamp": ts,
                }
            )
            buf = io.BytesIO()
            pcsv.write_csv(table, buf, options)
            f.write(buf.getbuffer())
            used[items] = True
            rows += users.size
            clicks += int((rating >= 7).sum())  # RATINGS[7] == "4.0"
    return dict(rows=rows, users=n_users, items=int(used.sum()), clicks=clicks)
