"""The serving contract of an exported model and the graph behind it.

``tf_multvae.serving.export`` saves a :class:`ServingModule` as a SavedModel
whose signatures take and return the tensors named here; clients
(``tf_multvae.serving.recommend``, TF Serving requests) call them by these
names.
The module traces the model's ``score`` into plain TensorFlow ops and
keeps only its variables, so the SavedModel loads and runs without Keras
or this package.
"""

from __future__ import annotations

import tensorflow as tf

from tf_multvae import features
from tf_multvae import metrics
from tf_multvae import ranking

SAVED_MODEL_FILE = "saved_model.pb"
DEFAULT_TOP_K = 100

# Signature -> its one input, string [batch, max_len] padded with ID_PAD
# or int64 [batch, max_len] padded with INDEX_PAD.
SERVING_SIGNATURE = "serving_default"  # raw item ids
INDEX_SIGNATURE = "by_index"  # item indices (line numbers of items.txt)
IDS_INPUT = "items"
INDICES_INPUT = "item_indices"
ID_PAD = ""
INDEX_PAD = features.PAD  # -1

# Outputs of both signatures, per user, best first:
ITEM_IDS = "item_ids"  # string [batch, k]
ITEM_INDICES = "item_indices"  # int64 [batch, k]
SCORES = "scores"  # float32 [batch, k], the logits
UNKNOWN_ITEMS = "unknown_items"  # int64 [batch], input ids not known
OUTPUTS = (ITEM_IDS, ITEM_INDICES, SCORES, UNKNOWN_ITEMS)
# A user with fewer than k items left (n_items minus the distinct known
# input items) gets those first, then padding columns: no item, no score.
SCORE_PAD = float("nan")
INPUT_SHAPE = "[batch, max_len]"  # what a wrong-rank input is told
# How the output layer's kernel is stored and multiplied (export's
# --output-dtype): the model's float32, or bfloat16 (half the bytes every
# request reads; the product rounded to bfloat16, then the float32 bias).
OUTPUT_DTYPES = ("float32", "bfloat16")


def unique_items(item_ids: tf.Tensor) -> tf.Tensor:
    """Each row's distinct items, the rest padding.

    Args:
        item_ids: int64 ``[batch, max_len]`` item indices padded with -1.

    Returns:
        int64 ``[batch, max_len]``: sorted ascending, a repeated item
        replaced by -1 (so it counts once in the normalized input).
    """
    ids = tf.sort(item_ids, axis=1)  # padding (-1) first
    repeated = tf.concat(
        [tf.zeros_like(ids[:, :1], tf.bool), ids[:, 1:] == ids[:, :-1]], 1
    )
    return tf.where(repeated, tf.constant(features.PAD, tf.int64), ids)


def _check_rank(inputs, name: str, kind: str, pad: str) -> tf.Tensor:
    """``inputs`` once it is known to be of rank 2, else an error.

    The signatures' TensorSpec is ``[None, None]``, but neither TF Serving
    nor a restored signature checks a request against it, and the graph
    optimizer folds ``tf.rank`` of such a tensor into the constant 2. The
    rank is therefore counted from data: the dimensions of the runtime
    shape, found by ``tf.where`` (a data-dependent size nothing folds).

    Raises (at run time):
        InvalidArgumentError: "assertion failed: [items must be a string
        tensor of shape [batch, max_len] ...] [got shape] [3]" (TF
        Serving returns this text as the request's error).
    """
    shape = tf.shape(inputs, out_type=tf.int64)
    rank = tf.shape(tf.where(shape >= 0), out_type=tf.int64)[0]
    check = tf.debugging.Assert(
        tf.equal(rank, 2),
        [
            f"{name} must be {kind} tensor of shape {INPUT_SHAPE} (one "
            f"row of items per user, padded with {pad});",
            "got shape",
            shape,
        ],
        name=f"check_{name}_rank",
    )
    with tf.control_dependencies([check]):
        return tf.identity(inputs)


class ServingModule(tf.Module):
    """The serving graph: a model's scoring function, the vocabulary, top-k.

    Only the model's variables and the traced TensorFlow graph of its
    ``score`` are saved, never the Keras objects, so ``tf.saved_model.load``
    needs TensorFlow alone.

    Args:
        model: a built Mult-VAE^PR or Mult-DAE (anything with ``n_items``,
            ``variables`` and ``score(item_ids) -> [batch, n_items]``).
        vocabulary: path of ``items.txt`` (line number = item index);
            copied into the SavedModel's assets.
        top_k: items returned per user.
        output_dtype: one of :data:`OUTPUT_DTYPES`. "bfloat16" saves the
            output layer's kernel in bfloat16 instead of float32 and
            multiplies in bfloat16 (needs a model with ``latent`` and a
            ``decoder``: Mult-VAE^PR or Mult-DAE).

    Raises:
        ValueError: ``top_k`` outside [1, n_items], an unknown
            ``output_dtype``, or bfloat16 for another model.
    """

    def __init__(
        self,
        model,
        vocabulary: str,
        top_k: int = DEFAULT_TOP_K,
        output_dtype: str = "float32",
    ):
        super().__init__(name="multvae_serving")
        n_items = int(model.n_items)
        if not 1 <= top_k <= n_items:
            raise ValueError(
                f"--top-k {top_k} must be between 1 and the number of "
                f"items, {n_items}"
            )
        if output_dtype not in OUTPUT_DTYPES:
            raise ValueError(
                f"--output-dtype must be one of {', '.join(OUTPUT_DTYPES)}, "
                f"not {output_dtype!r}"
            )
        self._k = int(top_k)
        self._n_items = n_items
        self._score = model.score
        saved = list(model.variables)
        if output_dtype == "bfloat16":
            if not hasattr(model, "latent"):
                raise ValueError(
                    "--output-dtype bfloat16 needs a Mult-VAE^PR or "
                    f"Mult-DAE, not {type(model).__name__}"
                )
            layer = model.decoder.output_layer
            saved = [v for v in saved if v.path != layer.kernel.path]
            self.output_kernel = tf.Variable(
                tf.cast(layer.kernel.value, tf.bfloat16),
                trainable=False,
                name="output_kernel_bfloat16",
            )

            def score(item_ids):
                hidden = model.decoder.hidden(model.latent(item_ids))
                product = tf.matmul(
                    tf.cast(hidden, tf.bfloat16), self.output_kernel
                )
                return tf.nn.bias_add(
                    tf.cast(product, tf.float32), layer.bias.value
                )

            self._score = score
        # Tracked, hence saved: the tf.Variables under the Keras variables,
        # which the traced graph reads (not the float32 output kernel of a
        # bfloat16 export, which it does not).
        self.model_variables = [v.value for v in saved]
        self.top_k = tf.Variable(self._k, dtype=tf.int64, trainable=False)
        self.n_items = tf.Variable(n_items, dtype=tf.int64, trainable=False)
        self.vocabulary = vocab = tf.saved_model.Asset(vocabulary)
        self.id_to_index = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                vocab,
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
                vocab_size=n_items,
            ),
            default_value=features.PAD,
        )
        self.index_to_id = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                vocab,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
                vocab_size=n_items,
            ),
            default_value=ID_PAD,
        )
        self.recommend_ids = tf.function(
            self._recommend_ids,
            input_signature=[
                tf.TensorSpec([None, None], tf.string, name=IDS_INPUT)
            ],
        )
        self.recommend_indices = tf.function(
            self._recommend_indices,
            input_signature=[
                tf.TensorSpec([None, None], tf.int64, name=INDICES_INPUT)
            ],
        )

    def signature_functions(self) -> dict:
        """Signature name -> tf.function, for tf.saved_model.save."""
        return {
            SERVING_SIGNATURE: self.recommend_ids,
            INDEX_SIGNATURE: self.recommend_indices,
        }

    def _recommend_ids(self, items):
        """Top-k of users given by raw item ids (string, "" padded).

        Each row holds, best first, the user's ``top_k`` best items other
        than the input items. Where fewer are left (``n_items`` minus the
        user's distinct known input items), the columns after them are
        padding: ``item_ids`` "", ``item_indices`` -1 and ``scores`` NaN,
        so an input item or an item with no score is never returned. The
        real recommendations of a row are those with ``item_indices >= 0``.

        Raises (at run time, as TF Serving reports it):
            InvalidArgumentError: ``items`` is not of rank 2; the message
                names the expected ``[batch, max_len]``.
        """
        items = _check_rank(items, IDS_INPUT, "a string", '""')
        indices = self.id_to_index.lookup(items)  # [batch, max_len], -1: none
        unknown = tf.logical_and(items != ID_PAD, indices == features.PAD)
        return self._top_k(indices, unknown)

    def _recommend_indices(self, item_indices):
        """Top-k of users given by item indices (int64, -1 padded).

        The outputs and errors of :meth:`_recommend_ids`.
        """
        item_indices = _check_rank(
            item_indices, INDICES_INPUT, "an int64", str(INDEX_PAD)
        )
        known = tf.logical_and(item_indices >= 0, item_indices < self._n_items)
        unknown = tf.logical_and(item_indices != features.PAD, ~known)
        indices = tf.where(known, item_indices, features.PAD)
        return self._top_k(indices, unknown)

    def _top_k(self, indices, unknown):
        """The outputs of both signatures.

        Args:
            indices: int64 ``[batch, max_len]``, known items or -1.
            unknown: bool ``[batch, max_len]``, input ids not known.
        """
        indices = unique_items(indices)
        scores = tf.cast(self._score(indices), tf.float32)  # [batch, items]
        # §4.2: the input items are excluded, exactly as in evaluation.
        masked = metrics.mask_fold_in(scores, indices)
        scores, top = ranking.top_k(masked, self._k)
        top = tf.cast(top, tf.int64)  # [batch, k]
        # Columns past the items left are input items (-inf): padding.
        left = self._n_items - tf.reduce_sum(
            tf.cast(indices != features.PAD, tf.int64), axis=1
        )
        real = tf.range(self._k, dtype=tf.int64)[None, :] < left[:, None]
        top = tf.where(real, top, tf.constant(INDEX_PAD, tf.int64))
        return {
            ITEM_IDS: self.index_to_id.lookup(top),  # -1 -> ID_PAD
            ITEM_INDICES: top,
            SCORES: tf.where(real, scores, tf.constant(SCORE_PAD)),
            UNKNOWN_ITEMS: tf.reduce_sum(tf.cast(unknown, tf.int64), axis=1),
        }
