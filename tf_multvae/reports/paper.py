"""The paper's published figures that the report tables print beside ours.

Table 3's quoted rows (NCF's and the paper's Mult-DAE under NCF's
protocol) are at the end, :func:`table3`.

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


# Table 3 (HR@10, NDCG@10) under NCF's leave-one-out protocol, on NCF's own
# files: NCF's published 64-factor rows and the paper's Mult-DAE, quoted
# (not rerun); per dataset, (row name, HR@10, NDCG@10, how sure). The
# Pinterest figures were not checked against the papers here.
TABLE3_COLUMNS = ("hr_at_10", "ndcg_at_10")
TABLE3: dict[str, tuple[tuple[str, float | None, float | None, str], ...]] = {
    "ncf-ml-1m": (
        ("NCF (He et al. 2017)", 0.705, 0.426, "published"),
        ("NCF with pre-training", 0.730, 0.447, "published"),
        ("Mult-DAE (Liang et al. 2018)", 0.722, 0.446, "published"),
        (
            "EASE (third-party rerun, Dacrema et al. TOIS)",
            0.719,
            0.449,
            "rerun",
        ),
        ("SLIM (third-party rerun)", 0.716, 0.447, "rerun"),
    ),
    "ncf-pinterest": (
        ("NCF (He et al. 2017)", 0.872, 0.551, "not checked"),
        ("NCF with pre-training", 0.877, 0.552, "not checked"),
        ("Mult-DAE (Liang et al. 2018)", 0.886, None, "about; not checked"),
    ),
}


def table3(dataset: str) -> list[dict]:
    """The quoted Table 3 rows of one of NCF's datasets (ncf-ml-1m,
    ncf-pinterest): ``[{"name", "hr_at_10", "ndcg_at_10", "source"}]``;
    [] for any other dataset."""
    return [
        {"name": name, **dict(zip(TABLE3_COLUMNS, values)), "source": how}
        for name, *values, how in TABLE3.get(dataset, ())
    ]
