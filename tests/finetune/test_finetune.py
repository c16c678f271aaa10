"""Fine-tuning end to end on debug sizes: the label path overfits to F1 = 1.0, the optimizer applies ELECTRA's
layer-wise rates, encoders load from a pretrain dir and a TF1 checkpoint, and 2 replicas train like 1."""

import dataclasses
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from data_prep.bio import decode_bio
from data_prep.config import NerDataConfig
from data_prep.console import registered_commands, run
from data_prep.errors import InputError
from data_prep.gsd import load_gsd
from data_prep.ner_data import build_ner_data
from finetune.data import NerData
from finetune.model import TokenTagger, tagging_loss
from finetune.optimizer import LayerwiseAdamW
from finetune.trainer import CLIP_NORM, BestOnDev, Initialization, finetune, load_finetuned
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
    build_ner_data(load_gsd(str(gsd)), tokenizer_dir, out, NerDataConfig(max_seq_length=64))
    return out


def logged_scalars(log_dir, tag) -> dict[int, float]:
    """step -> value of one TensorBoard scalar, from the event files in `log_dir`."""
    import tensorflow as tf

    return {event.step: float(tf.make_ndarray(value.tensor))
            for path in log_dir.iterdir() for event in tf.compat.v1.train.summary_iterator(str(path))
            for value in event.summary.value if value.tag == tag}


def with_finetune(config, **changes):
    return dataclasses.replace(config, finetune=dataclasses.replace(config.finetune, **changes))


def edit_json(path, change):
    """Rewrites a JSON file after `change` has edited its parsed content in place."""
    content = json.loads(pathlib.Path(path).read_text())
    change(content)
    pathlib.Path(path).write_text(json.dumps(content))


def add_a_wordpiece(tokenizer_dir):
    """One more WordPiece in a tokenizer dir: every id as before, but not the same vocabulary."""
    with open(os.path.join(tokenizer_dir, "vocab.txt"), "a", encoding="utf-8") as f:
        f.write("追加語\n")


def pretrain_style_dir(out, debug_config, tokenizer_dir):
    """What `electra-ja pretrain` leaves for fine-tuning: encoder/ checkpoint, model_config.json and tokenizer/."""
    pretrainer = ElectraPretrainer(debug_config.model, SPECIAL)
    pretrainer(random_batch(rows=2, length=32))
    save_encoder(pretrainer, str(out), step=1)
    (out / "model_config.json").write_text(json.dumps({"model": dataclasses.asdict(debug_config.model)}))
    shutil.copytree(tokenizer_dir, out / "tokenizer")
    return out


def copy_finetuned(finetuned_dir, out):
    shutil.copytree(finetuned_dir, out, ignore=shutil.ignore_patterns("tensorboard"))
    return out


def open_files_under(directory) -> list[str]:
    """Files under `directory` this process holds open (Linux: /proc/self/fd)."""
    links = (os.path.join("/proc/self/fd", fd) for fd in os.listdir("/proc/self/fd"))
    targets = [os.readlink(link) for link in links if os.path.islink(link)]
    return [target for target in targets if target.startswith(str(directory))]


def test_tagger_overfits_a_handful_of_sentences_to_f1_one(handful_dir, debug_config, tmp_path):
    from finetune.evaluation import evaluate

    config = with_finetune(debug_config, batch_size=4, num_epochs=100, learning_rate=3e-3, layerwise_lr_decay=1.0)
    out = str(tmp_path / "finetuned")
    results = finetune(config, handful_dir, "random", out, trials=2)

    assert [trial["test"]["f1"] for trial in results["trials"]] == [1.0, 1.0]
    assert results["summary"]["test"]["f1"] == {"mean": 1.0, "std": 0.0}
    assert results["test"]["correct"] == results["test"]["gold"] >= 16
    assert results["decoding"] == "valid BIO"  # what the scores are of, for readers of results.json and model cards
    for name in ("model_config.json", "labels.json", "results.json", "tokenizer/vocab.txt", "checkpoint/checkpoint"):
        assert (tmp_path / "finetuned" / name).exists(), name
    assert json.loads((tmp_path / "finetuned" / "results.json").read_text())["selected_trial"] in (1, 2)
    dev_f1 = logged_scalars(tmp_path / "finetuned" / "tensorboard" / "trial-2" / "dev", "entity_f1")
    assert sorted(dev_f1) == list(range(1, 101)) and dev_f1[100] == 1.0

    # The saved model, loaded again, scores what training reported (scores of 1, which a model that failed to
    # load its weights could not reach).
    tagger, description, labels = load_finetuned(out)
    assert labels == NerData.load(handful_dir).labels and description["init"]["kind"] == "random"
    again = evaluate(tagger, NerData.load(handful_dir), "test")
    assert {name: again[name] for name in ("precision", "recall", "f1", "correct", "gold")} == \
        {name: results["test"][name] for name in ("precision", "recall", "f1", "correct", "gold")}
    code = run(["evaluate", "--model", out, "--data", handful_dir, "--split", "test"], registered_commands())
    assert code == 0


def electra_depth(path: str, layers: int) -> int:
    """google-research/electra's `_get_layer_lrs` keys, matched against our variable paths."""
    if "/embeddings/" in path or "/embeddings_project/" in path:
        return 0
    if layer := re.search(r"/layer_(\d+)/", path):
        return int(layer.group(1)) + 1
    assert "/classifier/" in path, path
    return layers + 2


def test_layerwise_decay_scales_each_layers_learning_rate(debug_config):
    """Adam's first step moves every weight by lr (m / sqrt(v) = sign(g)), so the step sizes show the rates."""
    tagger = TokenTagger(debug_config.model, num_labels=5)
    tagger.build_variables()
    layers = debug_config.model.num_hidden_layers
    expected = {v.path: electra_depth(v.path, layers) for v in tagger.trainable_variables}
    assert sorted(set(expected.values())) == [0, 1, 2, 4]  # embeddings, 2 layers, classifier at L + 2
    assert tagger.layer_depths() == expected
    optimizer = LayerwiseAdamW(tagger.layer_depths(), decay=0.5, learning_rate=1e-2, weight_decay=0.0, epsilon=1e-12)
    before = {v.path: v.numpy() for v in tagger.trainable_variables}
    gradients = [tf.random.normal(v.shape, seed=i) for i, v in enumerate(tagger.trainable_variables)]
    optimizer.apply_gradients(zip(gradients, tagger.trainable_variables))
    for v in tagger.trainable_variables:
        step = np.abs(v.numpy() - before[v.path])
        np.testing.assert_allclose(step, 1e-2 * 0.5 ** (layers + 2 - expected[v.path]), rtol=1e-3, err_msg=v.path)


def test_encoder_loads_from_a_pretrain_model_dir(debug_config, tmp_path):
    pretrainer = ElectraPretrainer(debug_config.model, SPECIAL)
    batch = random_batch(rows=2, length=32)
    pretrainer(batch)
    save_encoder(pretrainer, str(tmp_path), step=7)
    tagger = TokenTagger(debug_config.model, num_labels=5)
    tagger.build_variables()
    Initialization("pretrained", str(tmp_path), debug_config.model,
                   checkpoint=tf.train.latest_checkpoint(str(tmp_path / "encoder"))).load_into(tagger)
    ours = tagger.encode(batch)
    np.testing.assert_allclose(ours.numpy(), pretrainer.encode(batch["input_ids"], batch["input_mask"],
                                                               batch["segment_ids"]).numpy(), atol=1e-6)


def test_reinit_top_layers_keeps_fresh_weights_above_the_loaded_ones(debug_config, tmp_path):
    pretrainer = ElectraPretrainer(debug_config.model, SPECIAL)
    pretrainer(random_batch(rows=2, length=32))
    save_encoder(pretrainer, str(tmp_path), step=7)
    init = Initialization("pretrained", str(tmp_path), debug_config.model,
                          checkpoint=tf.train.latest_checkpoint(str(tmp_path / "encoder")))
    tagger = TokenTagger(debug_config.model, num_labels=5)
    tagger.build_variables()
    fresh = [v.numpy() for v in tagger.encoder.blocks[-1].weights]
    init.load_into(tagger, reinit_top_layers=1)
    for ours, theirs in zip(tagger.embeddings.weights + tagger.encoder.blocks[0].weights,
                            pretrainer.embeddings.weights + pretrainer.discriminator.blocks[0].weights, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=ours.path)
    for ours, value in zip(tagger.encoder.blocks[-1].weights, fresh, strict=True):
        np.testing.assert_array_equal(ours.numpy(), value, err_msg=ours.path)
    with pytest.raises(InputError, match="reinit_top_layers 3: the encoder has 2 layers"):
        init.load_into(tagger, reinit_top_layers=3)


def test_encoder_loads_from_a_google_research_electra_checkpoint(tf1_checkpoint, debug_config):  # noqa: F811
    prefix, tensors = tf1_checkpoint
    tagger = TokenTagger(debug_config.model, num_labels=5)
    tagger.build_variables()
    Initialization("tf1", prefix, debug_config.model).load_into(tagger)
    batch = random_batch(rows=2, length=64)
    ours = tagger.encode(batch)
    reference = numpy_bert(tensors, "electra", batch["input_ids"], batch["input_mask"].astype(np.float32),
                           batch["segment_ids"], debug_config.model.num_attention_heads)
    np.testing.assert_allclose(ours.numpy(), reference, atol=2e-4)


@pytest.mark.parametrize("optimizer_args", [
    {"learning_rate": 1e-3, "global_clipnorm": CLIP_NORM},
    # A step that is the gradient itself (lr * g / (|g| + epsilon)): clipped Adam steps hide the gradient's scale.
    {"learning_rate": 1e3, "epsilon": 1e3, "weight_decay": 0.0},
], ids=["clipped", "step_is_the_gradient"])
def test_mirrored_training_step_equals_default(debug_config, ner_dir, mirrored, optimizer_args):
    model = dataclasses.replace(debug_config.model, hidden_dropout=0.0)
    data = NerData.load(ner_dir[0])
    features, labels = next(iter(data.dataset("train", 8)))
    taggers = []
    for strategy in (tf.distribute.get_strategy(), mirrored):
        with strategy.scope():
            tagger = TokenTagger(model, len(data.labels), dropout=0.0)
            tagger.build_variables()
            optimizer = LayerwiseAdamW(tagger.layer_depths(), 0.8, **optimizer_args)
            tagger.compile(optimizer=optimizer, loss=tagging_loss)
        taggers.append(tagger)
    single, mirrored = taggers
    mirrored.set_weights(single.get_weights())
    before = single.get_weights()
    single_loss, mirrored_loss = (tagger.train_on_batch(features, labels) for tagger in taggers)
    np.testing.assert_allclose(mirrored_loss, single_loss, rtol=1e-5)
    assert np.median([np.abs(a - b).max() for a, b in zip(single.get_weights(), before)]) > 1e-4
    for a, b in zip(single.get_weights(), mirrored.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_bad_init_checkpoint_and_mismatched_vocabulary_are_clear_errors(handful_dir, debug_config, tokenizer_dir,
                                                                        tmp_path):
    with pytest.raises(InputError, match="not a TF checkpoint"):
        finetune(debug_config, handful_dir, str(tmp_path / "nowhere"), str(tmp_path / "out"))
    (tmp_path / "pretrained").mkdir()
    (tmp_path / "pretrained" / "model_config.json").write_text("{}")
    with pytest.raises(InputError, match="no encoder/ checkpoint"):
        finetune(debug_config, handful_dir, str(tmp_path / "pretrained"), str(tmp_path / "out"))
    with pytest.raises(InputError, match="not a finished fine-tuned dir"):
        load_finetuned(str(tmp_path / "out"))

    other = pretrain_style_dir(tmp_path / "pretrained_on_another_vocabulary", debug_config, tokenizer_dir)
    add_a_wordpiece(other / "tokenizer")
    with pytest.raises(InputError, match=f"^--data {handful_dir}: built with another vocabulary than "
                                         f"--init-checkpoint {other}'s tokenizer/"):
        finetune(debug_config, handful_dir, str(other), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_init_model_config_without_sizes_is_a_clear_error(handful_dir, debug_config, tokenizer_dir, tmp_path):
    pretrained = pretrain_style_dir(tmp_path / "pretrained", debug_config, tokenizer_dir)
    edit_json(pretrained / "model_config.json", lambda c: c["model"].pop("hidden_size"))
    with pytest.raises(InputError, match=f'^--init-checkpoint {pretrained}/model_config.json: "model" lacks '
                                         "hidden_size$"):
        finetune(debug_config, handful_dir, str(pretrained), str(tmp_path / "out"))


@pytest.mark.parametrize("file, change, message", [
    ("checkpoint", None, "no checkpoint in {model}/checkpoint$"),
    ("model_config.json", lambda c: c.pop("model"), 'model_config.json: no "model" section'),
    ("model_config.json", lambda c: c["model"].pop("num_hidden_layers"), '"model" lacks num_hidden_layers$'),
    ("model_config.json", lambda c: c["model"].update(hidden_size="64"), "ModelConfig.hidden_size: expected int"),
    ("model_config.json", lambda c: c["model"].update(hidden_size=32),
     r"ckpt-1 was saved from a model of other sizes \(Received incompatible tensor with shape \(64, 45\)"),
    ("model_config.json", lambda c: c["model"].update(num_hidden_layers=3),
     r"ckpt-1 was saved from a model of other sizes \(its layers differ\)$"),
    ("model_config.json", lambda c: c.pop("max_seq_length"), "max_seq_length None, expected a positive integer"),
    ("labels.json", lambda labels: labels.pop("labels"), 'labels.json: expected "labels": a non-empty list'),
    ("labels.json", lambda labels: labels["labels"].pop(), r"ckpt-1 was saved from a model of other sizes .*45"),
])
def test_damaged_finetuned_dir_is_a_clear_error(finetuned_dir, tmp_path, file, change, message):
    model = copy_finetuned(finetuned_dir, str(tmp_path / "model"))
    if change is None:
        shutil.rmtree(os.path.join(model, file))
    else:
        edit_json(os.path.join(model, file), change)
    with pytest.raises(InputError) as error:
        load_finetuned(model)
    assert str(error.value).startswith(f"--model {model}")
    assert re.search(message.format(model=model), str(error.value)), str(error.value)


def test_checkpoint_of_other_sizes_ends_the_cli_output_with_its_error_line(finetuned_dir, ner_dir, tmp_path):
    """TF warns about a half-done restore when it is freed; that must not come after, and bury, the error."""
    model = copy_finetuned(finetuned_dir, str(tmp_path / "model"))
    edit_json(os.path.join(model, "model_config.json"), lambda c: c["model"].update(hidden_size=32))
    result = subprocess.run([os.path.join(os.path.dirname(sys.executable), "electra-ja"), "evaluate", "--model", model,
                             "--data", ner_dir[0]], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"electra-ja evaluate: error: --model {model}: {model}/checkpoint/ckpt-1 was saved from a model of other sizes")


def test_evaluate_refuses_data_the_model_cannot_read_in_one_line(capsys, finetuned_dir, ner_dir, handful_dir,
                                                                 tokenizer_dir, tmp_path):
    def error_line(*argv):
        code = run(["evaluate", *argv], registered_commands())
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err, err[-2000:]
        return err.strip().splitlines()[-1]

    prefix = "electra-ja evaluate: error: "
    long_windows = str(tmp_path / "ner128")
    build_ner_data(load_gsd(str(GSD_DIR)), tokenizer_dir, long_windows, NerDataConfig(max_seq_length=128))
    assert error_line("--model", finetuned_dir, "--data", long_windows) == (
        f"{prefix}--data {long_windows}: built with max_seq_length 128, but --model {finetuned_dir} has only 64 "
        "positions")
    assert error_line("--model", finetuned_dir, "--data", handful_dir).startswith(
        f"{prefix}--data {handful_dir}: its labels.json differs from --model {finetuned_dir}'s")
    other = copy_finetuned(finetuned_dir, str(tmp_path / "other_vocabulary"))
    add_a_wordpiece(os.path.join(other, "tokenizer"))
    assert error_line("--model", other, "--data", ner_dir[0]).startswith(
        f"{prefix}--data {ner_dir[0]}: built with another vocabulary than --model {other}'s tokenizer/")
    assert error_line("--model", finetuned_dir, "--data", ner_dir[0], "--batch-size", "0") == \
        f"{prefix}--batch-size 0: must be at least 1"


@pytest.mark.parametrize("flag, message", [
    ("--batch-size", "--batch-size: FinetuneConfig.batch_size: must be at least 1, got 0"),
    ("--num-epochs", "--num-epochs: FinetuneConfig.num_epochs: must be at least 1, got 0"),
    ("--trials", "--trials 0: expected at least 1"),
])
def test_finetune_counts_below_one_are_one_line_errors(capsys, handful_dir, tmp_path, flag, message):
    code = run(["finetune", "--data", handful_dir, "--init-checkpoint", "random", "--out", str(tmp_path / "out"),
                flag, "0"], registered_commands())
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"electra-ja finetune: error: {message}"
    assert not (tmp_path / "out").exists()


def test_dev_summary_writer_is_closed_when_training_ends(handful_dir, debug_config, tmp_path):
    data = NerData.load(handful_dir)
    tagger = TokenTagger(debug_config.model, len(data.labels))
    tagger.compile(optimizer="sgd", loss=tagging_loss)
    best = BestOnDev(data, str(tmp_path), batch_size=4)
    assert open_files_under(tmp_path / "dev")  # the writer's event file, open while training
    tagger.fit(data.dataset("train", 4, training=True), epochs=1, steps_per_epoch=2, shuffle=False,
               callbacks=[best], verbose=0)
    assert best.scores is not None and open_files_under(tmp_path / "dev") == []


def test_model_dirs_of_earlier_versions_still_load(finetuned_dir, tmp_path):
    """Dirs written before ModelConfig.attention_dropout was retired carry it; they must keep working."""
    old = tmp_path / "finetuned"
    shutil.copytree(finetuned_dir, old)
    description = json.loads((old / "model_config.json").read_text())
    description["model"]["attention_dropout"] = 0.1
    (old / "model_config.json").write_text(json.dumps(description))
    tagger, _, labels = load_finetuned(str(old))
    assert tagger.config.hidden_size == description["model"]["hidden_size"] and len(labels) > 1
