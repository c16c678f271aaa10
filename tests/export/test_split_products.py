"""split_products on small graphs: which products it splits, along which axis, and that the answers stay the same."""

import numpy as np
import pytest
import tensorflow as tf

from export.split_products import graph_function, split_products


def rewritten(function, *arguments, min_elements: int = 1, parts: int = 2):
    """(the graph's outputs before, after the rewrite, the rewritten graph's op types)."""
    concrete = tf.function(function).get_concrete_function(*[tf.TensorSpec(a.shape, a.dtype) for a in arguments])
    graph_def = split_products(concrete.graph.as_graph_def(), min_elements, parts)
    split = graph_function(graph_def, [t.name for t in concrete.inputs], [t.name for t in concrete.outputs])
    return tf.nest.flatten(concrete(*arguments)), split(*arguments), [node.op for node in graph_def.node]


RNG = np.random.default_rng(0)
X = tf.constant(RNG.standard_normal([2, 5, 8], np.float32))
W = RNG.standard_normal([8, 4, 6], np.float32)


@pytest.mark.parametrize("function", [
    lambda x: tf.matmul(x[0], tf.constant(W.reshape(8, 24))),
    lambda x: tf.matmul(x[0], tf.constant(W.reshape(8, 24).T), transpose_b=True),
    lambda x: tf.einsum("abc,cde->abde", x, tf.constant(W)),  # keras' EinsumDense: query, key, value
    lambda x: tf.einsum("abcd,cde->abe", tf.reshape(x, [2, 5, 2, 4]), tf.constant(W.reshape(2, 4, 24))),  # output
], ids=["matmul", "matmul-transposed", "einsum-heads", "einsum-output"])
def test_a_split_product_answers_as_the_whole_one(function):
    before, after, ops = rewritten(function, X)
    assert ops.count("ConcatV2") == 1 and ops.count("MatMul") + ops.count("Einsum") == 2
    np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-6)


def test_small_indivisible_and_variable_operands_stay_whole():
    weights = RNG.standard_normal([8, 7], np.float32)  # 7 columns do not split in 2
    small = RNG.standard_normal([8, 4], np.float32)
    function = lambda x, y: (tf.matmul(x[0], tf.constant(weights)), tf.matmul(x[0], y),
                             tf.matmul(x[0], tf.constant(small)))
    _, _, ops = rewritten(function, X, tf.constant(RNG.standard_normal([8, 3], np.float32)), min_elements=40)
    assert "ConcatV2" not in ops and ops.count("MatMul") == 3


def test_one_block_leaves_the_graph_as_it_was():
    _, _, ops = rewritten(lambda x: tf.matmul(x[0], tf.constant(W.reshape(8, 24))), X, parts=1)
    assert "ConcatV2" not in ops and ops.count("MatMul") == 1
