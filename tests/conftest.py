"""Shared fixtures: seeding, the real datasets in ../shared/data, Beam args."""

from __future__ import annotations

import os
import pathlib
import random

import numpy as np
import pytest

# First: the package sets TF_ENABLE_ONEDNN_OPTS before TensorFlow loads.
import tf_multvae  # noqa: F401

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = pathlib.Path(__file__).resolve().parents[1]
# The real datasets may not be redistributed, so they are never committed:
# tests read them from ../shared/data or from $TF_MULTVAE_SHARED_DATA.
SHARED_DATA = pathlib.Path(
    os.environ.get("TF_MULTVAE_SHARED_DATA", REPO.parent / "shared" / "data")
)

# In-process runner: the multi-process default costs seconds per pipeline.
IN_PROCESS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)


def shared_file(relative: str) -> pathlib.Path:
    """A file of ../shared/data; skips the test when it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(
            f"{path} is not here (real data is not committed; set "
            "TF_MULTVAE_SHARED_DATA to the folder holding it)"
        )
    return path


@pytest.fixture
def in_process() -> list[str]:
    return list(IN_PROCESS)


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> str:
    """Synthetic clicks of 1,500 users x 400 items, prepared once per run.

    Tests only read it; one that changes a dataset prepares its own.
    """
    from data_prep import pipeline

    out = tmp_path_factory.mktemp("data") / "synthetic"
    code = pipeline.main(
        ["--dataset", "synthetic", "--synthetic-users", "1500",
         "--synthetic-items", "400", "--out", str(out), *IN_PROCESS]
    )
    assert code == 0
    return str(out)
