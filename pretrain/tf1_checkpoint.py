"""Reads google-research/electra (TF1) checkpoints into ElectraPretrainer by variable name, so checkpoints
trained with the seed's code, or the released ones, can be fine-tuned and exported here.

TF1 stores attention projections as [hidden, hidden] matrices; Keras' MultiHeadAttention keeps them per head
([hidden, heads, head_size] and [heads, head_size, hidden]). Both are row-major views of the same numbers,
so a reshape is the whole conversion. Optimizer slots (`.../adam_m`, `.../adam_v`) and `global_step` are ignored.

Example:
    load_tf1_checkpoint(model, "gs://bucket/electra_base/model.ckpt-766000")
"""

import numpy as np
import tensorflow as tf

from data_prep.errors import InputError
from pretrain.model import ElectraPretrainer, Embeddings, Encoder

_LAYER_NAMES = {
    "attention/self/query": lambda block: block._self_attention_layer._query_dense,
    "attention/self/key": lambda block: block._self_attention_layer._key_dense,
    "attention/self/value": lambda block: block._self_attention_layer._value_dense,
    "attention/output/dense": lambda block: block._self_attention_layer._output_dense,
    "attention/output/LayerNorm": lambda block: block._self_attention_layer_norm,
    "intermediate/dense": lambda block: block._feedforward_intermediate_dense,
    "output/dense": lambda block: block._feedforward_output_dense,
    "output/LayerNorm": lambda block: block._feedforward_layer_norm,
}


def embeddings_tf1_names(embeddings: Embeddings) -> dict[str, tf.Variable]:
    """TF1 name -> variable for the embeddings generator and discriminator share."""
    return {
        "electra/embeddings/word_embeddings": embeddings.token.embeddings,
        "electra/embeddings/position_embeddings": embeddings.position.position_embeddings,
        "electra/embeddings/token_type_embeddings": embeddings.segment.embeddings,
        **_norm("electra/embeddings/LayerNorm", embeddings.norm),
    }


def discriminator_tf1_names(embeddings: Embeddings, encoder: Encoder) -> dict[str, tf.Variable]:
    """TF1 name -> variable for the shared embeddings and the discriminator's encoder: what fine-tuning loads."""
    return {**embeddings_tf1_names(embeddings), **_encoder("electra", encoder)}


def rtd_head_tf1_names(model: ElectraPretrainer) -> dict[str, tf.Variable]:
    return {**dense_tf1_names("discriminator_predictions/dense", model.rtd_head.dense),
            **dense_tf1_names("discriminator_predictions/dense_1", model.rtd_head.logit)}


def generator_tf1_names(model: ElectraPretrainer) -> dict[str, tf.Variable]:
    """The generator's own weights: its encoder and MLM head (its embeddings are the discriminator's)."""
    head = model.mlm_head
    return {
        **_encoder("generator", model.generator),
        **dense_tf1_names("generator_predictions/dense", head._intermediate_dense),
        **_norm("generator_predictions/LayerNorm", head._intermediate_layer_norm),
        "generator_predictions/output_bias": head._bias,
    }


def tf1_names(model: ElectraPretrainer, with_generator: bool = True) -> dict[str, tf.Variable]:
    """TF1 variable name -> our variable, for every weight google-research/electra saves."""
    names = {**discriminator_tf1_names(model.embeddings, model.discriminator), **rtd_head_tf1_names(model)}
    if with_generator:
        names.update(generator_tf1_names(model))
    return names


def load_tf1_checkpoint(model: ElectraPretrainer, path: str, with_generator: bool = True) -> None:
    """Assigns every weight of the pretrainer from the TF1 checkpoint at `path`."""
    load_tf1_variables(tf1_names(model, with_generator), path)


def load_tf1_variables(names: dict[str, tf.Variable], path: str) -> None:
    """Assigns each variable from the TF1 checkpoint at `path` by name; a missing name or shape is an InputError."""
    reader = open_checkpoint(path)
    shapes = reader.get_variable_to_shape_map()
    for name, variable in names.items():
        if name not in shapes:
            raise InputError(f"{path}: no variable {name} (is this a google-research/electra checkpoint of the "
                             f"same size as the config's model section?)")
        if not _is_reshape(shapes[name], variable.shape):
            raise InputError(f"{path}: {name} has shape {shapes[name]}, the model expects "
                             f"{list(variable.shape)} (check the config's sizes)")
        variable.assign(reader.get_tensor(name).reshape(variable.shape))


def _is_reshape(tf1_shape: list[int], shape) -> bool:
    """Whether `shape` only splits axes of `tf1_shape` (per-head views): same size, and every boundary between
    TF1 axes is one between ours, so a transposed matrix of the same size is not taken for a match."""
    tf1_boundaries, boundaries = set(np.cumprod(tf1_shape)), set(np.cumprod(list(shape)))
    return int(np.prod(tf1_shape)) == int(np.prod(list(shape))) and tf1_boundaries <= boundaries


def open_checkpoint(path: str):
    """A reader for a checkpoint prefix or a directory with a `checkpoint` file; anything else is an InputError."""
    try:
        return tf.train.load_checkpoint(path)
    except (tf.errors.NotFoundError, tf.errors.DataLossError, ValueError) as error:
        raise InputError(f"--init-checkpoint {path}: not a TF checkpoint ({str(error).splitlines()[0]})") from None


def _encoder(scope: str, encoder: Encoder) -> dict:
    names = dense_tf1_names(f"{scope}/embeddings_project", encoder.project) if encoder.project is not None else {}
    for i, block in enumerate(encoder.blocks):
        for tf1_name, layer_of in _LAYER_NAMES.items():
            layer = layer_of(block)
            prefix = f"{scope}/encoder/layer_{i}/{tf1_name}"
            names.update(_norm(prefix, layer) if tf1_name.endswith("LayerNorm") else dense_tf1_names(prefix, layer))
    return names


def dense_tf1_names(prefix: str, layer) -> dict:
    return {f"{prefix}/kernel": layer.kernel, f"{prefix}/bias": layer.bias}


def _norm(prefix: str, layer) -> dict:
    return {f"{prefix}/gamma": layer.gamma, f"{prefix}/beta": layer.beta}
