"""Raw layouts and the paper's preprocessing presets.

The presets follow docs/design.md, "The paper's protocol" (preprocessing).

A :class:`Layout` says how to read a dataset's raw files; a
:class:`PrepConfig` says how to turn them into clicks and splits. Presets are
named instances; the CLI overrides them with ``dataclasses.replace``.
A preset prepares the paper's strong-generalization split unless its
``protocol`` is leave-one-out (``--protocol``), which any layout with a
time column can feed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tf_multvae import features

USER = "user"
ITEM = "item"
RATING = "rating"
# The two kinds of time column: integer seconds, or a YYYY-MM-DD date
# (Netflix's). Read only when the protocol orders clicks in time.
TIMESTAMP = "timestamp"
DATE = "date"
TIME_ROLES = (TIMESTAMP, DATE)
ROLES = (USER, ITEM, RATING, *TIME_ROLES)
ON_BAD_LINES = ("error", "skip")
# NCF's evaluation ranks the held-out item among itself and 99 negatives.
DEFAULT_NEGATIVES = 99


@dataclass(frozen=True)
class Layout:
    """How one dataset's raw files are laid out.

    Attributes:
        kind: "delimited" (one rating per line) or "netflix" (``MovieID:``
            header lines followed by ``CustomerID,Rating,Date`` lines).
        sep: field separator; may be several characters (ML-1M's ``::``).
        header: whether each file starts with a header line to skip.
        columns: a name per field; ``user``, ``item`` and ``rating`` are the
            roles the pipeline reads, ``timestamp`` (integer seconds) or
            ``date`` (YYYY-MM-DD) the time it reads for leave-one-out;
            other names are ignored.
        id_type: "int" (ids sorted numerically, as pandas sorts an integer
            column) or "str" (lexicographic; all-digit ids sort numerically).
        file_patterns: file globs tried in order when ``--raw`` is a directory.
        value_range: ``(column, low, high)``: a value of that numeric column
            outside ``[low, high]`` (None: unbounded) makes its line a bad
            line, as a NaN or infinite rating always does; None: only the
            rating column is read as a number, and any finite one is kept.
    """

    kind: str
    sep: str
    header: bool
    columns: tuple[str, ...]
    id_type: str
    file_patterns: tuple[str, ...]
    value_range: tuple[str, float | None, float | None] | None = None

    def __post_init__(self):
        if self.kind not in ("delimited", "netflix"):
            raise ValueError(f"unknown layout kind {self.kind!r}")
        if not self.sep:
            raise ValueError("the field separator must not be empty")
        if self.id_type not in ("int", "str"):
            raise ValueError(f"id_type must be int or str, not {self.id_type}")
        for role in (USER, ITEM):
            if self.kind == "delimited" and self.columns.count(role) != 1:
                raise ValueError(
                    f"--columns needs exactly one {role!r} column, "
                    f"got {','.join(self.columns)}"
                )
        if self.columns.count(RATING) > 1:
            raise ValueError("--columns names 'rating' more than once")
        times = [c for c in self.columns if c in TIME_ROLES]
        if len(times) > 1:
            raise ValueError(
                f"--columns names more than one time column: {','.join(times)}"
            )
        self._check_value_range()

    def _check_value_range(self):
        if self.value_range is None:
            return
        column, low, high = self.value_range
        if column not in self.columns or column in (USER, ITEM, *TIME_ROLES):
            raise ValueError(
                f"value_range names {column!r}, not a value column of "
                f"{','.join(self.columns)}"
            )
        if low is not None and high is not None and not low <= high:
            raise ValueError(f"value_range {self.value_range} is empty")

    @property
    def has_rating(self) -> bool:
        return RATING in self.columns

    @property
    def time_column(self) -> str | None:
        """The ``timestamp`` or ``date`` column, or None (no time)."""
        return next((c for c in self.columns if c in TIME_ROLES), None)


@dataclass(frozen=True)
class PrepConfig:
    """Preprocessing parameters (docs/design.md, "The paper's protocol").

    Attributes:
        dataset: preset name, recorded in metadata.json.
        layout: how the raw files are read.
        threshold: a rating is a click iff rating > threshold; None: every
            row is a click (MSD play counts, csv without a rating column).
        min_item_users: keep items with at least this many clicks; applied
            first (MSD: 200); 0 disables.
        min_user_clicks: then keep users with at least this many clicks.
        heldout_users: users in each of validation and test; None: 10% of the
            users that pass the filters, each.
        seed: numpy seed for the user permutation and the held-out draws
            (the authors used 98765).
        heldout_fraction: share of a held-out user's clicks drawn as targets,
            int(fraction * n) of them (0.2 in the paper).
        min_clicks_to_score: held-out users with fewer remaining clicks get no
            targets and are not scored (5 in the authors' notebook).
        on_bad_lines: "error" stops at the first malformed line; "skip"
            counts and drops malformed lines.
        protocol: ``features.STRONG_GENERALIZATION`` (the paper's split,
            above) or ``features.LEAVE_ONE_OUT`` (NCF's: every user trains,
            each user's latest click is its test item and the latest one
            left its validation item, ranked among ``negatives`` sampled
            items; needs a time column, and ``heldout_users`` None).
        negatives: sampled negatives per held-out item under leave-one-out
            (None there means :data:`DEFAULT_NEGATIVES`); None otherwise.
    """

    dataset: str
    layout: Layout
    threshold: float | None
    min_item_users: int
    min_user_clicks: int
    heldout_users: int | None
    seed: int = 98765
    heldout_fraction: float = 0.2
    min_clicks_to_score: int = 5
    on_bad_lines: str = "error"
    protocol: str = features.STRONG_GENERALIZATION
    negatives: int | None = None

    def __post_init__(self):
        for name in ("min_item_users", "min_user_clicks"):
            if getattr(self, name) < 0:
                flag = "--" + name.replace("_", "-")
                raise ValueError(
                    f"{flag} must be >= 0, got {getattr(self, name)}"
                )
        if self.heldout_users is not None and self.heldout_users < 1:
            raise ValueError(
                f"--heldout-users must be >= 1, got {self.heldout_users}"
            )
        if self.seed < 0 or self.seed >= 2**32:
            raise ValueError(f"--seed must be in [0, 2**32), got {self.seed}")
        if not 0.0 < self.heldout_fraction < 1.0:
            raise ValueError("heldout_fraction must be in (0, 1)")
        if self.on_bad_lines not in ON_BAD_LINES:
            raise ValueError(
                f"--on-bad-lines must be one of {ON_BAD_LINES}, "
                f"got {self.on_bad_lines!r}"
            )
        if self.threshold is not None and not self.layout.has_rating:
            raise ValueError(
                f"--threshold {self.threshold} needs a rating column, but the "
                f"columns are {','.join(self.layout.columns)}"
            )
        self._check_protocol()

    def _check_protocol(self):
        if self.protocol not in features.PROTOCOLS:
            raise ValueError(
                f"--protocol must be one of {', '.join(features.PROTOCOLS)}, "
                f"got {self.protocol!r}"
            )
        if self.protocol != features.LEAVE_ONE_OUT:
            if self.negatives is not None:
                raise ValueError(
                    "--negatives applies to --protocol leave-one-out only"
                )
            return
        if self.negatives is None:
            object.__setattr__(self, "negatives", DEFAULT_NEGATIVES)
        if self.negatives < 1:
            raise ValueError(f"--negatives must be >= 1, got {self.negatives}")
        if self.heldout_users is not None:
            raise ValueError(
                "--heldout-users does not apply to --protocol leave-one-out "
                "(every user is in every split)"
            )
        if self.layout.time_column is None:
            raise ValueError(
                "--protocol leave-one-out needs a time column ('timestamp' "
                "or 'date'), but the columns are "
                f"{','.join(self.layout.columns)}"
            )

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


MOVIELENS_CSV = Layout(
    kind="delimited",
    sep=",",
    header=True,
    columns=(USER, ITEM, RATING, "timestamp"),
    id_type="int",
    file_patterns=("ratings.csv",),
    value_range=(RATING, 0.5, 5.0),
)
MOVIELENS_DAT = Layout(
    kind="delimited",
    sep="::",
    header=False,
    columns=(USER, ITEM, RATING, "timestamp"),
    id_type="int",
    file_patterns=("ratings.dat",),
    value_range=(RATING, 1.0, 5.0),
)
MOVIELENS_100K = Layout(
    kind="delimited",
    sep="\t",
    header=False,
    columns=(USER, ITEM, RATING, "timestamp"),
    id_type="int",
    file_patterns=("u.data",),
    value_range=(RATING, 1.0, 5.0),
)
NETFLIX = Layout(
    kind="netflix",
    sep=",",
    header=False,
    columns=(USER, RATING, "date"),
    id_type="int",
    file_patterns=(
        "combined_data_*.txt",
        "training_set/mv_*.txt",
        "mv_*.txt",
    ),
    value_range=(RATING, 1.0, 5.0),
)
MSD_TRIPLETS = Layout(
    kind="delimited",
    sep="\t",
    header=False,
    columns=(USER, ITEM, "play_count"),
    id_type="str",
    file_patterns=("train_triplets.txt",),
    value_range=("play_count", 1.0, None),
)
CSV = Layout(
    kind="delimited",
    sep=",",
    header=False,
    columns=(USER, ITEM, RATING),
    id_type="str",
    file_patterns=("*",),
)

_MOVIELENS = dict(threshold=3.5, min_item_users=0, min_user_clicks=5)

PRESETS = {
    "ml-20m": PrepConfig(
        "ml-20m", MOVIELENS_CSV, heldout_users=10_000, **_MOVIELENS
    ),
    "ml-25m": PrepConfig(
        "ml-25m", MOVIELENS_CSV, heldout_users=10_000, **_MOVIELENS
    ),
    "ml-1m": PrepConfig(
        "ml-1m", MOVIELENS_DAT, heldout_users=600, **_MOVIELENS
    ),
    "ml-100k": PrepConfig(
        "ml-100k", MOVIELENS_100K, heldout_users=100, **_MOVIELENS
    ),
    "netflix": PrepConfig(
        "netflix", NETFLIX, heldout_users=40_000, **_MOVIELENS
    ),
    "msd": PrepConfig(
        "msd",
        MSD_TRIPLETS,
        threshold=None,
        min_item_users=200,
        min_user_clicks=20,
        heldout_users=50_000,
    ),
    "csv": PrepConfig("csv", CSV, heldout_users=None, **_MOVIELENS),
    "synthetic": PrepConfig(
        "synthetic", MOVIELENS_CSV, heldout_users=None, **_MOVIELENS
    ),
}
