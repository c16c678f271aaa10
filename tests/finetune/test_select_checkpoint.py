"""select-checkpoint: pretraining keeps the last K encoders and every N-th; each kept one is fine-tuned with the same
seeds, the best dev mean is marked, and finetune --init-checkpoint PRETRAIN_DIR then starts from the marked one."""

import dataclasses
import json
import os
import statistics

import numpy as np
import pytest
import tensorflow as tf

from data_prep.config import NerDataConfig, load_config
from data_prep.console import registered_commands, run
from data_prep.ner_data import build_ner_data
from data_prep.ner_formats import read_ner_file
from data_prep.splits import Splits
from data_prep.tokenizer import JapaneseTokenizer
from finetune.data import NerData
from finetune.model import TokenTagger
from finetune.trainer import Initialization
from pretrain.model_dir import checkpoint_step, encoder_checkpoints
from pretrain.trainer import train
from tests.data_prep.test_ner_formats import write_format


@pytest.fixture(scope="module")
def kept_encoders(tmp_path_factory, pretraining_data, debug_config) -> str:
    """A debug pretraining run of 8 steps, saving every 2, keeping the last 2 encoders and every 4th."""
    out = str(tmp_path_factory.mktemp("pretrain") / "run")
    config = dataclasses.replace(debug_config, pretrain=dataclasses.replace(
        debug_config.pretrain, num_train_steps=8, save_checkpoints_steps=2, warmup_steps=1, keep_checkpoint_max=2,
        keep_encoder_every_steps=4))
    train(config, pretraining_data, out)
    return out


@pytest.fixture(scope="module")
def small_ner(tmp_path_factory, tokenizer_dir) -> str:
    files = tmp_path_factory.mktemp("files")
    sentences = read_ner_file(write_format(files, "jsonl"))
    out = str(tmp_path_factory.mktemp("ner") / "ner")
    build_ner_data(Splits({"train": sentences, "dev": sentences, "test": sentences}, {}), tokenizer_dir, out,
                   NerDataConfig(max_seq_length=64))
    return out


def test_pretraining_keeps_the_last_encoders_and_every_nth(kept_encoders):
    assert [checkpoint_step(path) for path in encoder_checkpoints(kept_encoders)] == [4, 6, 8]
    names = os.listdir(os.path.join(kept_encoders, "encoder"))
    assert not any(name.startswith("ckpt-2.") for name in names), names
    assert tf.train.latest_checkpoint(os.path.join(kept_encoders, "encoder")).endswith("ckpt-8")


def test_the_best_dev_mean_is_marked_and_finetune_starts_from_it(kept_encoders, small_ner, capsys):
    code = run(["select-checkpoint", "--model-dir", kept_encoders, "--data", small_ner, "--trials", "2",
                "--config", "configs/debug.yaml", "--set", "finetune.batch_size=4", "--set", "finetune.num_epochs=3",
                "--set", "finetune.learning_rate=3e-3"], registered_commands())
    assert code == 0
    selection = json.loads(open(os.path.join(kept_encoders, "selection.json")).read())
    rows = selection["checkpoints"]
    assert [row["step"] for row in rows] == [4, 6, 8] and all(len(row["dev"]) == 2 for row in rows)
    assert selection["metric"] == "f1"
    best = max(rows, key=lambda row: statistics.fmean(row["dev"]))
    assert selection["selected"]["checkpoint"] == best["checkpoint"]
    assert open(os.path.join(kept_encoders, "selection.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    table = open(os.path.join(kept_encoders, "selection.md")).read()
    assert f"| {best['step']} | {statistics.fmean(best['dev']):.4f} |" in table and "selected" in table
    assert f"select-checkpoint: step {best['step']} marked" in capsys.readouterr().out

    # finetune --init-checkpoint PRETRAIN_DIR starts from exactly the marked encoder's weights.
    out = os.path.join(os.path.dirname(small_ner), "finetuned")
    assert run(["finetune", "--data", small_ner, "--init-checkpoint", kept_encoders, "--out", out, "--config",
                "configs/debug.yaml", "--num-epochs", "1", "--batch-size", "4"], registered_commands()) == 0
    assert json.loads(open(os.path.join(out, "results.json")).read())["init"]["checkpoint"] == best["checkpoint"]
    data = NerData.load(small_ner)
    init = Initialization.resolve(kept_encoders, load_config("configs/debug.yaml"), data,
                                  JapaneseTokenizer.load(data.tokenizer_dir))
    other = next(row["checkpoint"] for row in rows if row is not best)
    started = encoder_weights(init, None)
    assert all(np.array_equal(a, b) for a, b in zip(started, encoder_weights(init, best["checkpoint"])))
    assert not all(np.array_equal(a, b) for a, b in zip(started, encoder_weights(init, other)))


def encoder_weights(init: Initialization, checkpoint: str | None) -> list[np.ndarray]:
    """The encoder weights a tagger gets from `init`, or from another encoder checkpoint of the same dir."""
    tagger = TokenTagger(init.model, 3)
    tagger.build_variables()
    (init if checkpoint is None else dataclasses.replace(init, checkpoint=checkpoint)).load_into(tagger)
    return [v.numpy() for v in tagger.embeddings.weights + tagger.encoder.weights]
