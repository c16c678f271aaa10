"""Shared fixtures: the shipped data, the debug config and one debug tokenizer trained once per session."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPUs, so MirroredStrategy runs real multi-replica steps; must precede any TF op.
tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * 2)

REPO = pathlib.Path(__file__).resolve().parents[1]
GSD_DIR = REPO / "data" / "ud_japanese_gsd_ne" / "r2.8-NE"
NOVEL = REPO / "data" / "corpus" / "wagahaiwa_nekodearu.txt"
DEBUG_CONFIG = REPO / "configs" / "debug.yaml"


def shipped_sentences() -> list[str]:
    """Every sentence/paragraph of the shipped corpora: the novel and all three GSD splits."""
    paths = [NOVEL] + [GSD_DIR / "text" / f"{split}.txt" for split in ("train", "dev", "test")]
    return [line.rstrip("\n") for path in paths for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="session")
def mirrored():
    """One MirroredStrategy over the two logical CPUs for the whole session: two strategies in one process hand
    out clashing collective-op keys (a TF limitation; the CLI never makes more than one)."""
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.fixture(scope="session")
def debug_config():
    from data_prep.config import load_config

    return load_config(str(DEBUG_CONFIG))


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory, debug_config):
    """A debug-size vocabulary trained on the novel and GSD train text, as `make demo` does."""
    from data_prep.vocab import train_vocab

    out = tmp_path_factory.mktemp("tokenizer")
    train_vocab([str(NOVEL), str(GSD_DIR / "text" / "train.txt")], debug_config.vocab, str(out))
    return str(out)


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir):
    from data_prep.tokenizer import JapaneseTokenizer

    return JapaneseTokenizer.load(tokenizer_dir)


@pytest.fixture(scope="session")
def ner_dir(tmp_path_factory, tokenizer_dir):
    """ner-data on all of GSD r2.8-NE with the debug tokenizer, 64-token windows: (directory, stats)."""
    from data_prep.config import NerDataConfig
    from data_prep.gsd import load_gsd
    from data_prep.ner_data import build_ner_data

    out = str(tmp_path_factory.mktemp("ner"))
    stats = build_ner_data(load_gsd(str(GSD_DIR)), tokenizer_dir, out, NerDataConfig(max_seq_length=64))
    return out, stats


@pytest.fixture(scope="session")
def finetuned_dir(tmp_path_factory, ner_dir, debug_config):
    """A debug tagger fine-tuned for one epoch on GSD train from random weights: weak, but it predicts entities."""
    import dataclasses

    from finetune.trainer import finetune

    out = str(tmp_path_factory.mktemp("finetuned"))
    config = dataclasses.replace(debug_config, finetune=dataclasses.replace(debug_config.finetune, num_epochs=1))
    finetune(config, ner_dir[0], "random", out)
    return out


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory, finetuned_dir):
    """`electra-ja export` of finetuned_dir: the base path (version 1 inside)."""
    from export.saved_model import export_model

    base = str(tmp_path_factory.mktemp("export"))
    export_model(finetuned_dir, base)
    return base


@pytest.fixture(scope="session")
def pretraining_data(tmp_path_factory, tokenizer_dir):
    """pretraining-data on GSD's dev text with the debug tokenizer: 64-token examples in one shard."""
    from data_prep.config import PretrainingDataConfig
    from data_prep.pretraining_data import build_pretraining_data

    out = str(tmp_path_factory.mktemp("pretrain_data"))
    build_pretraining_data([str(GSD_DIR / "text" / "dev.txt")], tokenizer_dir, out,
                           PretrainingDataConfig(max_seq_length=64, num_shards=1))
    return out


@pytest.fixture(scope="session")
def pretrain_dir(tmp_path_factory, pretraining_data, debug_config):
    """A debug pretraining run of 4 steps (checkpoints at 2 and 4)."""
    import dataclasses

    from pretrain.trainer import train

    out = str(tmp_path_factory.mktemp("pretrain"))
    config = dataclasses.replace(debug_config, pretrain=dataclasses.replace(
        debug_config.pretrain, num_train_steps=4, save_checkpoints_steps=2, warmup_steps=1))
    train(config, pretraining_data, out)
    return out
