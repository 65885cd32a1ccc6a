"""The squared norm of a TensorFlow ``IndexedSlices`` gradient (an embedding's, on TensorFlow).

TensorFlow alone hands an embedding's gradient over as IndexedSlices whose rows may repeat (a
token seen twice in the batch). The dense gradient sums repeated rows, so its norm is *not* the
norm of the values. Duplicates are summed first (``tf.unique``, O(lookups); under XLA, which has
no ``Unique`` kernel, a sort + segment sum), in O(lookups x dim): the (vocab x dim) dense table
is never built. JAX and torch hand over dense gradients (:mod:`quantities`).
"""

from __future__ import annotations

import tensorflow as tf


def squared_norm(grad: tf.IndexedSlices, xla: bool = False) -> tf.Tensor:
    """Squared L2 norm of the dense gradient an IndexedSlices stands for."""
    values = tf.cast(grad.values, tf.float32)
    idx = tf.reshape(grad.indices, [-1])
    if not xla:
        unique, position = tf.unique(idx)
        summed = tf.math.unsorted_segment_sum(values, position, tf.shape(unique)[0])
        return tf.reduce_sum(tf.square(summed))
    n = tf.shape(idx)[0]
    order = tf.argsort(idx, stable=True)
    sorted_idx = tf.gather(idx, order)
    changed = tf.cast(tf.not_equal(sorted_idx[1:], sorted_idx[:-1]), tf.int32)
    starts = tf.concat([tf.ones([1], tf.int32), changed], 0)
    segments = tf.cumsum(starts[:n]) - 1
    summed = tf.math.unsorted_segment_sum(tf.gather(values, order), segments, n)
    return tf.reduce_sum(tf.square(summed))
