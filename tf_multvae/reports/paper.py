"""The paper's published figures that the report tables print beside ours.

Test Recall@20, Recall@50 and NDCG@100 of Liang et al. (WWW 2018),
Table 2, per dataset and model; EASE's are Steck's (WWW 2019) on the same
splits. Sources and how sure each block is: docs/design.md, "The paper's
protocol" (the Mult-VAE^PR and Mult-DAE rows were checked against the
paper, the MSD baseline rows against a secondary source; the ML-20M and
Netflix WMF, SLIM and CDAE rows are approximate). None: the model has no
published figure there (SLIM did not finish on MSD).
"""

from __future__ import annotations

# metric names, in the paper's column order
COLUMNS = ("recall_at_20", "recall_at_50", "ndcg_at_100")

TABLE2: dict[str, dict[str, tuple[float, float, float] | None]] = {
    "ml-20m": {
        "vae": (0.395, 0.537, 0.426),
        "dae": (0.387, 0.524, 0.419),
        "wmf": (0.360, 0.498, 0.386),
        "slim": (0.370, 0.495, 0.401),
        "cdae": (0.391, 0.523, 0.418),
        "ease": (0.391, 0.521, 0.420),
    },
    "netflix": {
        "vae": (0.351, 0.444, 0.386),
        "dae": (0.344, 0.438, 0.380),
        "wmf": (0.316, 0.404, 0.351),
        "slim": (0.347, 0.428, 0.379),
        "cdae": (0.343, 0.428, 0.376),
        "ease": (0.362, 0.445, 0.393),
    },
    "msd": {
        "vae": (0.266, 0.364, 0.316),
        "dae": (0.266, 0.363, 0.313),
        "wmf": (0.211, 0.312, 0.257),
        "slim": None,
        "cdae": (0.188, 0.283, 0.237),
        "ease": (0.333, 0.428, 0.389),
    },
}
# Rows whose published figures are approximate (see the module docstring).
APPROXIMATE = {
    ("ml-20m", "wmf"), ("ml-20m", "slim"), ("ml-20m", "cdae"),
    ("netflix", "wmf"), ("netflix", "slim"), ("netflix", "cdae"),
}  # fmt: skip


def table2(dataset: str) -> dict | None:
    """``{row: {metric: value} | None}`` for one of the paper's datasets
    (ml-20m, netflix, msd), else None."""
    rows = TABLE2.get(dataset)
    if rows is None:
        return None
    return {
        row: None if values is None else dict(zip(COLUMNS, values))
        for row, values in rows.items()
    }
