"""Reading a model dir: `model_config.json` (which every pretrain and fine-tuned dir has) and a pretrain dir's
checkpoints. pretrain/trainer.py writes them.

Example:
    description, model = read_model_config("build/demo/pretrain", "--model")
    pretrainer, description, step = restore_pretrainer("build/demo/pretrain", "--model")
"""

import dataclasses

import tensorflow as tf
from tensorflow.io import gfile

from data_prep import storage
from data_prep.config import ModelConfig, from_dict
from data_prep.errors import InputError
from pretrain.model import ElectraPretrainer, SpecialIds
from pretrain.weights import layer_checkpoint

CHECKPOINTS_DIR = "checkpoints"
ENCODER_DIR = "encoder"
MODEL_CONFIG = "model_config.json"
# select-checkpoint's choice among the kept encoders; fine-tuning from the dir starts from it when present.
SELECTION = "selection.json"
# Keys model dirs written by earlier versions carry and the model no longer reads (attention_dropout: keras-hub's
# encoder has one dropout rate, model.hidden_dropout).
RETIRED_MODEL_KEYS = ("attention_dropout",)
# Keys added since, with the value every model dir written before them computed.
ADDED_MODEL_KEYS = {"hidden_act": "gelu_new"}


def read_model_config(model_dir: str, flag: str) -> tuple[dict, ModelConfig]:
    """A pretrain or fine-tuned dir's model_config.json and its encoder sizes, validated as a config file is."""
    path = storage.join(model_dir, MODEL_CONFIG)
    description = storage.read_json(path, flag)
    if not isinstance(description, dict) or not isinstance(description.get("model"), dict):
        raise InputError(f'{flag} {path}: no "model" section with the encoder\'s sizes')
    # Defaults would build a model of other sizes than the checkpoint's, so every size must be there.
    sizes = {**ADDED_MODEL_KEYS, **{k: v for k, v in description["model"].items() if k not in RETIRED_MODEL_KEYS}}
    missing = [f.name for f in dataclasses.fields(ModelConfig) if f.name not in sizes]
    if missing:
        raise InputError(f'{flag} {path}: "model" lacks {", ".join(missing)}')
    return description, from_dict(ModelConfig, sizes, where=f"{flag} {path}")


def checkpoint_step(path: str) -> int:
    """The step of a checkpoint path such as `encoder/ckpt-1200`."""
    return int(path.rsplit("-", 1)[1])


def encoder_checkpoints(model_dir: str) -> list[str]:
    """The kept encoder checkpoints of a pretrain dir (`.../encoder/ckpt-N`), oldest first. Read from the files, as
    the checkpoint state file lists only what its last CheckpointManager tracked."""
    indexes = gfile.glob(storage.join(model_dir, ENCODER_DIR, "ckpt-*.index"))
    return sorted((path[:-len(".index")] for path in indexes), key=checkpoint_step)


def restore_pretrainer(model_dir: str, flag: str) -> tuple[ElectraPretrainer, dict, int]:
    """The generator + discriminator of a pretrain dir's latest checkpoint, its model_config.json and its step."""
    description, model = read_model_config(model_dir, flag)
    latest = tf.train.latest_checkpoint(storage.join(model_dir, CHECKPOINTS_DIR))
    if latest is None:
        raise InputError(f"{flag} {model_dir}: no {CHECKPOINTS_DIR}/ checkpoint yet (pretraining writes one at every "
                         "save_checkpoints_steps)")
    pretrainer = ElectraPretrainer(model, SpecialIds(**description["special_ids"]))
    pretrainer.build_variables()
    try:
        tf.train.Checkpoint(model=layer_checkpoint(model=pretrainer)).restore(latest).assert_existing_objects_matched().expect_partial()
    except (AssertionError, ValueError) as error:
        raise InputError(f"{flag} {model_dir}: {latest} does not fit its model_config.json "
                         f"({str(error).splitlines()[0][:200]})") from None
    return pretrainer, description, checkpoint_step(latest)
