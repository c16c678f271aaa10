"""Fine-tuning end to end on debug sizes: the label path overfits to F1 = 1.0, the optimizer applies ELECTRA's
layer-wise rates, encoders load from a pretrain dir and a TF1 checkpoint, and 2 replicas train like 1."""

import dataclasses
import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from data_prep.bio import decode_bio
from data_prep.config import NerDataConfig
from data_prep.console import registered_commands, run
from data_prep.errors import InputError
from data_prep.ner_data import build_ner_data
from finetune.data import NerData
from finetune.model import TokenTagger, tagging_loss
from finetune.optimizer import LayerwiseAdamW
from finetune.trainer import Initialization, finetune, load_finetuned
from pretrain.model import ElectraPretrainer
from pretrain.trainer import save_encoder
from tests.conftest import GSD_DIR
from tests.pretrain.test_model import random_batch
from tests.pretrain.test_tf1_checkpoint import SPECIAL, numpy_bert, tf1_checkpoint  # noqa: F401 (a fixture)


def conllu_blocks(path):
    """sent_id -> the sentence's lines (comments and tokens) in a .conllu file."""
    blocks = {}
    for block in pathlib.Path(path).read_text(encoding="utf-8").strip().split("\n\n"):
        sent_id = next(line.split("= ", 1)[1] for line in block.splitlines() if line.startswith("# sent_id"))
        blocks[sent_id] = block
    return blocks


@pytest.fixture(scope="module")
def handful_dir(tmp_path_factory, ner_dir, tokenizer_dir):
    """ner-data on 8 GSD train sentences, used as train, dev and test: entities on MeCab word edges only."""
    data = NerData.load(ner_dir[0])
    chosen = [s.id for s in data.sentences("train")
              if len(s.entities) >= 2 and len(s.windows) == 1
              and {(e.start, e.end, e.type) for e in s.entities}
              == {(p.start, p.end, p.type) for p in decode_bio(s.word_labels, s.words)}][:8]
    blocks = conllu_blocks(GSD_DIR / "ja_gsd-ud-train.ne.conllu")
    gsd = tmp_path_factory.mktemp("handful_gsd")
    for split in ("train", "dev", "test"):
        (gsd / f"ja_gsd-ud-{split}.ne.conllu").write_text("\n\n".join(blocks[i] for i in chosen) + "\n\n",
                                                         encoding="utf-8")
    out = str(tmp_path_factory.mktemp("handful_ner"))
    build_ner_data(str(gsd), tokenizer_dir, out, NerDataConfig(max_seq_length=64))
    return out


def logged_scalars(log_dir, tag) -> dict[int, float]:
    """step -> value of one TensorBoard scalar, from the event files in `log_dir`."""
    import tensorflow as tf

    return {event.step: float(tf.make_ndarray(value.tensor))
            for path in log_dir.iterdir() for event in tf.compat.v1.train.summary_iterator(str(path))
            for value in event.summary.value if value.tag == tag}


def with_finetune(config, **changes):
    return dataclasses.replace(config, finetune=dataclasses.replace(config.finetune, **changes))


def test_tagger_overfits_a_handful_of_sentences_to_f1_one(handful_dir, debug_config, tmp_path):
    config = with_finetune(debug_config, batch_size=4, num_epochs=100, learning_rate=3e-3, layerwise_lr_decay=1.0)
    out = str(tmp_path / "finetuned")
    results = finetune(config, handful_dir, "random", out, trials=2)

    assert [trial["test"]["f1"] for trial in results["trials"]] == [1.0, 1.0]
    assert results["summary"]["test"]["f1"] == {"mean": 1.0, "std": 0.0}
    assert results["test"]["correct"] == results["test"]["gold"] >= 16
    for name in ("model_config.json", "labels.json", "results.json", "tokenizer/vocab.txt", "checkpoint/checkpoint"):
        assert (tmp_path / "finetuned" / name).exists(), name
    assert json.loads((tmp_path / "finetuned" / "results.json").read_text())["selected_trial"] in (1, 2)
    dev_f1 = logged_scalars(tmp_path / "finetuned" / "tensorboard" / "trial-2" / "dev", "entity_f1")
    assert sorted(dev_f1) == list(range(1, 101)) and dev_f1[100] == 1.0

    code = run(["evaluate", "--model", out, "--data", handful_dir, "--split", "test"], registered_commands())
    assert code == 0


def test_evaluate_reproduces_the_saved_scores(handful_dir, debug_config, tmp_path):
    from finetune.evaluation import evaluate

    out = str(tmp_path / "finetuned")
    results = finetune(with_finetune(debug_config, batch_size=4, num_epochs=2), handful_dir, "random", out)
    tagger, description, labels = load_finetuned(out)
    assert labels == NerData.load(handful_dir).labels and description["init"]["kind"] == "random"
    again = evaluate(tagger, NerData.load(handful_dir), "test")
    assert (again["precision"], again["recall"], again["f1"]) == \
        (results["test"]["precision"], results["test"]["recall"], results["test"]["f1"])


def test_layerwise_decay_scales_each_layers_learning_rate(debug_config):
    """Adam's first step moves every weight by lr (m / sqrt(v) = sign(g)), so the step sizes show the rates."""
    tagger = TokenTagger(debug_config.model, num_labels=5)
    tagger.build_variables()
    depths = tagger.layer_depths()
    assert sorted(set(depths.values())) == [0, 1, 2, 4]  # embeddings, 2 layers, classifier at L + 2
    optimizer = LayerwiseAdamW(depths, decay=0.5, learning_rate=1e-2, weight_decay=0.0, epsilon=1e-12)
    before = {v.path: v.numpy() for v in tagger.trainable_variables}
    gradients = [tf.random.normal(v.shape, seed=i) for i, v in enumerate(tagger.trainable_variables)]
    optimizer.apply_gradients(zip(gradients, tagger.trainable_variables))
    for v in tagger.trainable_variables:
        step = np.abs(v.numpy() - before[v.path])
        np.testing.assert_allclose(step, 1e-2 * 0.5 ** (4 - depths[v.path]), rtol=1e-3, err_msg=v.path)


def test_encoder_loads_from_a_pretrain_model_dir(debug_config, tmp_path):
    pretrainer = ElectraPretrainer(debug_config.model, SPECIAL)
    batch = random_batch(rows=2, length=32)
    pretrainer(batch)
    save_encoder(pretrainer, str(tmp_path), step=7)
    tagger = TokenTagger(debug_config.model, num_labels=5)
    tagger.build_variables()
    Initialization("pretrained", str(tmp_path), debug_config.model).load_into(tagger)
    ours = tagger.encoder(tagger.embeddings(batch["input_ids"], batch["segment_ids"]), batch["input_mask"])
    np.testing.assert_allclose(ours.numpy(), pretrainer.encode(batch["input_ids"], batch["input_mask"],
                                                               batch["segment_ids"]).numpy(), atol=1e-6)


def test_encoder_loads_from_a_google_research_electra_checkpoint(tf1_checkpoint, debug_config):  # noqa: F811
    prefix, tensors = tf1_checkpoint
    tagger = TokenTagger(debug_config.model, num_labels=5)
    tagger.build_variables()
    Initialization("tf1", prefix, debug_config.model).load_into(tagger)
    batch = random_batch(rows=2, length=64)
    ours = tagger.encoder(tagger.embeddings(batch["input_ids"], batch["segment_ids"]), batch["input_mask"])
    reference = numpy_bert(tensors, "electra", batch["input_ids"], batch["input_mask"].astype(np.float32),
                           batch["segment_ids"], debug_config.model.num_attention_heads)
    np.testing.assert_allclose(ours.numpy(), reference, atol=2e-4)


def test_mirrored_training_step_equals_default(debug_config, ner_dir, mirrored):
    model = dataclasses.replace(debug_config.model, hidden_dropout=0.0)
    data = NerData.load(ner_dir[0])
    features, labels = next(iter(data.dataset("train", 8)))
    taggers = []
    for strategy in (tf.distribute.get_strategy(), mirrored):
        with strategy.scope():
            tagger = TokenTagger(model, len(data.labels), dropout=0.0)
            tagger.build_variables()
            tagger.compile(optimizer=LayerwiseAdamW(tagger.layer_depths(), 0.8, learning_rate=1e-3),
                           loss=tagging_loss)
        taggers.append(tagger)
    single, mirrored = taggers
    mirrored.set_weights(single.get_weights())
    single_loss, mirrored_loss = (tagger.train_on_batch(features, labels) for tagger in taggers)
    np.testing.assert_allclose(mirrored_loss, single_loss, rtol=1e-5)
    for a, b in zip(single.get_weights(), mirrored.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_bad_init_checkpoint_and_mismatched_vocabulary_are_clear_errors(handful_dir, debug_config, tmp_path):
    with pytest.raises(InputError, match="not a TF checkpoint"):
        finetune(debug_config, handful_dir, str(tmp_path / "nowhere"), str(tmp_path / "out"))
    (tmp_path / "pretrained").mkdir()
    (tmp_path / "pretrained" / "model_config.json").write_text("{}")
    with pytest.raises(InputError, match="no encoder/ checkpoint"):
        finetune(debug_config, handful_dir, str(tmp_path / "pretrained"), str(tmp_path / "out"))
    with pytest.raises(InputError, match="not a finished fine-tuned dir"):
        load_finetuned(str(tmp_path / "out"))
