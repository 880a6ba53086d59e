"""What data prep prints: the account of its stages and Table 1's figures.

Both are read from the finished metadata.json (the counters the stages
kept, :mod:`data_prep.counters`), so what is printed is what was written.
"""

from __future__ import annotations

from tf_multvae import features


def _n(value) -> str:
    return f"{value:,}" if isinstance(value, int) else "?"


def account(metadata: dict) -> str:
    """One line per stage: rows read, clicks kept, users grouped, shards
    written."""
    rows = metadata.get("rows", {})
    params = metadata.get("parameters", {})
    files = metadata.get("source", {}).get("raw_files", [])
    lines = [
        f"read     {_n(rows.get('read'))} rows of {len(files)} raw file(s); "
        f"bad lines {_n(rows.get('bad_lines', 0))}"
    ]
    if "clicks" in rows:
        threshold = params.get("threshold")
        rule = "every row" if threshold is None else f"rating > {threshold}"
        lines.append(
            f"clicks   {_n(rows['clicks'])} ({rule}; "
            f"{_n(rows.get('below_threshold', 0))} rows below)"
        )
    dropped = [
        f"{_n(metadata[key])} {what}"
        for key, what in (
            ("items_dropped_by_min_item_users", "items with too few users"),
            ("users_dropped_by_min_user_clicks", "users with too few clicks"),
            (
                "users_dropped_with_fewer_than_3_items",
                "users with fewer than 3 items",
            ),
        )
        if key in metadata
    ]
    lines.append(
        f"kept     {_n(metadata['users'])} users, {_n(metadata['n_items'])} "
        f"items" + (f"; dropped {', '.join(dropped)}" if dropped else "")
    )
    splits = metadata["splits"]
    lines.append(
        "grouped  "
        + ", ".join(
            f"{split} {_n(splits[split]['users'])}"
            for split in features.SPLITS
            if split in splits
        )
        + " users"
    )
    shards = metadata.get("shard_files", {})
    count = sum(len(v) for v in shards.values())
    size = sum(s["bytes"] for v in shards.values() for s in v)
    lines.append(
        f"wrote    {count} shards ({size / (1 << 20):,.1f} MB) and "
        f"{features.VOCAB_FILE} in {metadata.get('pipeline_seconds', 0):.1f} s"
    )
    return "\n".join(lines)


def format_statistics(metadata: dict) -> str:
    """The paper's Table 1 columns, as the pipeline prints them."""
    s = metadata["splits"]
    rows = [
        ("dataset", metadata["source"]["dataset"]),
        ("users", f"{metadata['users']:,}"),
        ("items", f"{metadata['n_items']:,}"),
        ("interactions", f"{metadata['interactions']:,}"),
        ("density", f"{100 * metadata['density']:.3f}%"),
        (
            "held-out users",
            f"{metadata['heldout_users_per_split']:,} per split "
            f"(scored: validation {s['validation']['users_scored']:,}, "
            f"test {s['test']['users_scored']:,})",
        ),
        ("train users", f"{s['train']['users']:,}"),
        ("raw rows read", f"{metadata['rows']['read']:,}"),
        ("bad lines", f"{metadata['rows']['bad_lines']:,}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
