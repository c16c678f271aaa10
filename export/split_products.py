"""Splits a frozen graph's large weight products into column blocks that TensorFlow's inter-op threads can run side
by side.

One sentence is too small a matrix for intra-op threads to pay (their hand-offs cost more than they save), so a
single call's products run one after another on one core while the other waits. Two blocks of columns of the same
product are independent ops: with `--tensorflow-inter-op-parallelism 2` the executor runs them at once, and a
ConcatV2 joins their outputs where the product's output was. The rewrite uses only stock ops (Const, MatMul or
Einsum, ConcatV2), so tensorflow_model_server loads it as it loads any SavedModel.

Example:
    graph_def = split_products(constants.graph.as_graph_def(), min_elements=2**16)
    split = graph_function(graph_def, [t.name for t in constants.inputs], [t.name for t in constants.outputs])
"""

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import graph_pb2, node_def_pb2

PRODUCTS = ("MatMul", "Einsum")


def split_products(graph_def: graph_pb2.GraphDef, min_elements: int, parts: int = 2) -> graph_pb2.GraphDef:
    """`graph_def` with every MatMul or Einsum whose second operand is a constant of ≥ `min_elements` values computed
    as `parts` products over blocks of the constant's output columns, concatenated."""
    nodes = {node.name: node for node in graph_def.node}
    rewritten = graph_pb2.GraphDef(versions=graph_def.versions, library=graph_def.library)
    for node in graph_def.node:
        weight = _constant_weight(nodes, node)
        axes = _column_axes(node) if weight is not None else None
        if parts < 2 or axes is None or weight.size < min_elements or weight.shape[axes[0]] % parts:
            rewritten.node.append(node)
        else:
            rewritten.node.extend(_blocks(node, weight, *axes, parts))
    return rewritten


def graph_function(graph_def: graph_pb2.GraphDef, inputs: list[str], outputs: list[str]):
    """A function that runs `graph_def` from the tensors named `inputs` to those named `outputs`, returned flat."""
    @tf.autograph.experimental.do_not_convert  # a graph import has no Python control flow to convert
    def import_graph():
        tf.graph_util.import_graph_def(graph_def, name="")

    imported = tf.compat.v1.wrap_function(import_graph, [])
    return imported.prune([imported.graph.as_graph_element(name) for name in inputs],
                          [imported.graph.as_graph_element(name) for name in outputs])


def _constant_weight(nodes: dict, node: node_def_pb2.NodeDef) -> np.ndarray | None:
    """The product's second operand, when it is a constant (seen through the Identity freezing leaves)."""
    if node.op not in PRODUCTS or len(node.input) != 2:
        return None
    source = nodes[node.input[1].split(":")[0]]
    while source.op == "Identity":
        source = nodes[source.input[0].split(":")[0]]
    return tf.make_ndarray(source.attr["value"].tensor) if source.op == "Const" else None


def _column_axes(node: node_def_pb2.NodeDef) -> tuple[int, int] | None:
    """(the weight's axis, the output's axis) of an output column dimension the product does not sum over."""
    if node.op == "MatMul":
        return (0 if node.attr["transpose_b"].b else 1), 1
    inputs, output = node.attr["equation"].s.decode().split("->")
    operand, weight = inputs.split(",")
    if "." in inputs:  # an ellipsis hides which axes are which
        return None
    return next(((axis, output.index(letter)) for axis, letter in enumerate(weight)
                 if letter in output and letter not in operand), None)


def _blocks(node: node_def_pb2.NodeDef, weight: np.ndarray, weight_axis: int, output_axis: int,
            parts: int) -> list[node_def_pb2.NodeDef]:
    """The nodes that replace `node`: a constant and a product per block, and a ConcatV2 under `node`'s name, so
    its consumers need no change."""
    added, products = [], []
    for index, block in enumerate(np.split(weight, parts, axis=weight_axis)):
        constant = _constant(f"{node.name}/block_{index}/weight", block)
        product = node_def_pb2.NodeDef()
        product.CopyFrom(node)
        product.name = f"{node.name}/block_{index}"
        product.input[1] = constant.name
        added += [constant, product]
        products.append(product.name)
    axis = _constant(f"{node.name}/block_axis", np.int32(output_axis))
    concat = node_def_pb2.NodeDef(name=node.name, op="ConcatV2", input=[*products, axis.name], device=node.device)
    concat.attr["N"].i = parts
    concat.attr["T"].CopyFrom(node.attr["T"])
    concat.attr["Tidx"].type = tf.int32.as_datatype_enum
    return [*added, axis, concat]


def _constant(name: str, value: np.ndarray) -> node_def_pb2.NodeDef:
    constant = node_def_pb2.NodeDef(name=name, op="Const")
    constant.attr["dtype"].type = tf.as_dtype(value.dtype).as_datatype_enum
    constant.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
    return constant
