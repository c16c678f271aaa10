"""The fine-tuning models: ELECTRA's discriminator encoder, dropout and a dense layer, read from the hidden state of
each word's first WordPiece (`labeled_positions`) for the NER tagger, from [CLS] for the sentence classifier.

Embeddings and encoder are pretrain's own classes, so the discriminator weights a pretraining run saves
(`MODEL_DIR/encoder/`) restore into them unchanged, and google-research/electra TF1 checkpoints load by name.

Example:
    tagger = TokenTagger(load_config("configs/debug.yaml").model, num_labels=45)
    logits = tagger({"input_ids": ids, "input_mask": mask, "segment_ids": segments,
                     "labeled_positions": positions})            # [batch, positions, num_labels]
    classifier = SequenceClassifier(load_config("configs/debug.yaml").model, num_labels=2)
    logits = classifier({"input_ids": ids, "input_mask": mask, "segment_ids": segments})   # [batch, 2]
"""

import keras
import tensorflow as tf

from data_prep.config import ModelConfig
from pretrain.model import Embeddings, Encoder, EncoderSize, initializer

INPUTS = ("input_ids", "input_mask", "segment_ids", "labeled_positions")


class EncoderWithHead(keras.Model):
    """ELECTRA's discriminator encoder with dropout and a dense layer on top; subclasses choose which hidden states
    the dense layer reads (`head_input`) and which inputs they take (`feature_names`)."""

    feature_names: tuple[str, ...]

    def __init__(self, config: ModelConfig, num_labels: int, dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.config, self.num_labels = config, num_labels
        self.embeddings = Embeddings(config, name="embeddings")
        self.encoder = Encoder(EncoderSize.discriminator(config), config, name="electra")
        self.dropout = keras.layers.Dropout(dropout)
        # float32 logits under a bfloat16 policy: the softmax and the loss need the range.
        self.classifier = keras.layers.Dense(num_labels, kernel_initializer=initializer(), dtype="float32",
                                             name="classifier")

    def call(self, inputs, training=False):
        hidden = self.encode(inputs, training)
        return self.classifier(self.dropout(self.head_input(hidden, inputs), training=training))

    def encode(self, inputs, training=False, all_states=False):
        """The top layer's hidden states, or (`all_states`) the embeddings' and every layer's, as Encoder gives."""
        input_ids, input_mask, segment_ids = (tf.cast(inputs[name], tf.int32) for name in INPUTS[:3])
        return self.encoder(self.embeddings(input_ids, segment_ids, training=training), input_mask,
                            training=training, all_states=all_states)

    def head_input(self, hidden, inputs):
        raise NotImplementedError

    def build_variables(self, length: int = 8) -> None:
        """Creates every weight (a call on zeros), so checkpoints can be restored into them."""
        self({name: tf.zeros([1, length], tf.int32) for name in self.feature_names})

    def layer_depths(self) -> dict[str, int]:
        """Variable path -> depth for layer-wise learning-rate decay, as google-research/electra's
        `_get_layer_lrs`: embeddings (and their projection) 0, encoder layer i at i + 1, the classifier at L + 2."""
        layers = len(self.encoder.blocks)
        depths = {v.path: 0 for v in self.embeddings.trainable_variables}
        if self.encoder.project is not None:
            depths.update({v.path: 0 for v in self.encoder.project.trainable_variables})
        for i, block in enumerate(self.encoder.blocks):
            depths.update({v.path: i + 1 for v in block.trainable_variables})
        depths.update({v.path: layers + 2 for v in self.classifier.trainable_variables})
        return depths


class TokenTagger(EncoderWithHead):
    """Per-word label logits at `labeled_positions` (one position per word; padding positions are 0)."""

    feature_names = INPUTS

    def head_input(self, hidden, inputs):
        return tf.gather(hidden, tf.cast(inputs["labeled_positions"], tf.int32), batch_dims=1)


class SequenceClassifier(EncoderWithHead):
    """Label logits of a whole window from its [CLS] hidden state: google-research/electra's classification head
    (ELECTRA has no pooler; the first token's hidden state, dropout, a dense layer)."""

    feature_names = INPUTS[:3]

    def head_input(self, hidden, inputs):
        return hidden[:, 0]


def tagging_loss(labels, logits):
    """Cross-entropy summed over a sentence's real words (labels -1 elsewhere); Keras then averages over the
    batch, which is google-research/electra's tagging loss and splits exactly across replicas."""
    labels = tf.cast(labels, tf.int32)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.maximum(labels, 0), tf.cast(logits, tf.float32))
    return tf.reduce_sum(tf.where(labels >= 0, losses, 0.0), axis=-1)


def classification_loss(labels, logits):
    """Cross-entropy of each window's label; Keras averages it over the batch, as google-research/electra does."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(labels, tf.int32), tf.cast(logits, tf.float32))
