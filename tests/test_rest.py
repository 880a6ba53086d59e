"""The README's REST requests and responses, mapped to tensors as TF
Serving's REST API does, against the in-memory model.

The exported run is conftest's; here it is exported again with the
README example's top-k of 3.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import references
import tensorflow as tf
from conftest import REPO

from tf_multvae.serving import export
from tf_multvae.serving import signatures


def rest_predict(loaded, body: dict) -> dict:
    """TF Serving's REST predict, in process (tensorflow.org/tfx/serving/
    api_rest): the row format ({"instances": [...]}) or the columnar one
    ({"inputs": ...}), JSON values checked against the input's dtype, the
    response as {"predictions": [per-row objects]} or {"outputs": {...}}.
    """
    signature = loaded.signatures[body.get("signature_name", "serving_default")]
    _, specs = signature.structured_input_signature
    names = sorted(specs)

    def tensor(name, value):
        dtype = specs[name].dtype
        leaves = tf.nest.flatten(value)
        want = {tf.string: str, tf.int64: int}[dtype]
        for leaf in leaves:
            if type(leaf) is not want:
                raise TypeError(
                    f"JSON Value: {json.dumps(leaf)} is not of expected type: "
                    f"{dtype.name} (input {name!r})"
                )
        return tf.constant(value, dtype)

    if "instances" in body:
        rows = body["instances"]
        if rows and isinstance(rows[0], dict):
            inputs = {n: tensor(n, [r[n] for r in rows]) for n in names}
        else:
            (name,) = names
            inputs = {name: tensor(name, rows)}
    else:
        columns = body["inputs"]
        if not isinstance(columns, dict):
            (name,) = names
            columns = {name: columns}
        inputs = {n: tensor(n, columns[n]) for n in names}
    out = {k: v.numpy() for k, v in sorted(signature(**inputs).items())}
    out = {
        k: v.astype(str).tolist()
        if v.dtype == object  # utf-8 strings
        # float32 as its shortest repr (4.141305, not 4.141304969787598)
        else tf.nest.map_structure(
            lambda x: float(str(np.float32(x))), v.tolist()
        )
        if v.dtype == np.float32
        else v.tolist()
        for k, v in out.items()
    }
    if "instances" in body:
        batch = len(out["scores"])
        return {
            "predictions": [
                {k: out[k][u] for k in sorted(out)} for u in range(batch)
            ]
        }
    return {"outputs": out}


def readme_examples() -> list[tuple[dict, dict]]:
    """(request, response) JSON pairs of the README's Serving section."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Serving", 1)[1].split("\n## ", 1)[0]
    requests = [
        json.loads(body) for body in re.findall(r"curl -d '(\{.*?\})'", section)
    ]
    responses = [
        json.loads(block)
        for block in re.findall(r"```json\n(.*?)```", section, re.S)
    ]
    assert requests and len(requests) == len(responses), section
    return list(zip(requests, responses))


@pytest.fixture(scope="module")
def top3(serving_run, tmp_path_factory):
    """The run exported as the README's example is (--top-k 3)."""
    out = tmp_path_factory.mktemp("top3")
    path = export.export_run(str(serving_run), str(out), top_k=3)
    return tf.saved_model.load(path)


def test_readme_rest_requests(top3, keras_model, vocab):
    positions = {item: i for i, item in enumerate(vocab)}
    for request, documented in readme_examples():
        response = rest_predict(top3, request)
        # The documented response has the same form (keys and shapes).
        key = "predictions" if "instances" in request else "outputs"
        assert list(response) == list(documented) == [key]
        shapes = tf.nest.map_structure(lambda _: 0, response)
        assert shapes == tf.nest.map_structure(lambda _: 0, documented)
        # Its values are this model's ranking of the same users.
        if key == "predictions":
            rows = response[key]
            out = {k: [row[k] for row in rows] for k in rows[0]}
        else:
            out = response[key]
        if "instances" in request:
            rows = request["instances"]
        else:
            rows = request["inputs"][signatures.INDICES_INPUT]
        by_index = request.get("signature_name") == signatures.INDEX_SIGNATURE
        if by_index:
            known = [[i for i in row if 0 <= i < len(vocab)] for row in rows]
            pads = (signatures.INDEX_PAD,)
        else:
            known = [
                [positions[i] for i in row if i in positions] for row in rows
            ]
            pads = (signatures.ID_PAD,)
        unknown = [
            sum(1 for i in row if i not in pads) - len(known[u])
            for u, row in enumerate(rows)
        ]
        known = [sorted(set(row)) for row in known]
        width = max(len(row) for row in known)
        indices = np.full((len(rows), max(width, 1)), -1, np.int64)
        for u, row in enumerate(known):
            indices[u, : len(row)] = row
        references.assert_same_ranking(out, keras_model, indices, vocab, 3)
        assert out["unknown_items"] == unknown


def test_rest_rejects_ids_of_the_wrong_type(top3):
    with pytest.raises(TypeError, match="is not of expected type: string"):
        rest_predict(top3, {"instances": [[1, 2]]})
