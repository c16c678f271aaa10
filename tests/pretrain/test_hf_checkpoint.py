"""transformers model dirs, built here with random weights and `save_pretrained` as Hub checkpoints are: our encoder
computes what transformers computes from them, they fine-tune, export and serve, a pretrain run starts from an
exported pair, and each kind of bad checkpoint is one clear line with nothing written."""

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest
import torch
from transformers import (AutoTokenizer, BertConfig, BertForPreTraining, BertJapaneseTokenizer, ElectraConfig,
                          ElectraForPreTraining, ElectraModel)

from data_prep.console import registered_commands, run
from data_prep.tokenizer import JapaneseTokenizer
from finetune.model import TokenTagger
from pretrain.hf_checkpoint import CONFIG_DEFAULTS, HfCheckpoint
from pretrain.model_dir import restore_pretrainer
from serving.client import EntityClient
from serving.model_versions import ModelVersions
from serving.server import ModelServer
from tests.conftest import DEBUG_CONFIG, GSD_DIR

SIZES = {"vocab_size": None, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
         "intermediate_size": 128, "max_position_embeddings": 128}
MODELS = {
    "electra": lambda vocab: ElectraForPreTraining(ElectraConfig(**{**SIZES, "vocab_size": vocab},
                                                                 embedding_size=32, hidden_act="gelu_new")),
    "electra-without-projection": lambda vocab: ElectraModel(ElectraConfig(**{**SIZES, "vocab_size": vocab},
                                                                           embedding_size=64, hidden_act="gelu")),
    "bert": lambda vocab: BertForPreTraining(BertConfig(**{**SIZES, "vocab_size": vocab})),
}


def save_hub_model(directory, kind: str, vocab: list[str], mecab_dic: str, seed: int = 0):
    """A transformers model with random weights (LayerNorms and biases too, so a swapped pair shows) and its
    BertJapaneseTokenizer, both written by save_pretrained."""
    torch.manual_seed(seed)
    model = MODELS[kind](len(vocab))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    model.save_pretrained(directory)
    (directory / "vocab.txt").write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
    BertJapaneseTokenizer(str(directory / "vocab.txt"), word_tokenizer_type="mecab",
                          mecab_kwargs={"mecab_dic": mecab_dic}).save_pretrained(directory)
    return model.eval()


def base_model(model):
    return getattr(model, "electra", None) or getattr(model, "bert", None) or model


@pytest.mark.parametrize("mecab_dic", ["ipadic", "unidic_lite"])
@pytest.mark.parametrize("kind", list(MODELS))
def test_an_imported_encoder_computes_what_transformers_computes(tmp_path, tokenizer, kind, mecab_dic):
    reference = save_hub_model(tmp_path, kind, tokenizer.vocab, mecab_dic)
    checkpoint = HfCheckpoint.open(str(tmp_path))
    assert (checkpoint.model.embedding_size != checkpoint.model.hidden_size) == (kind == "electra")
    ours = JapaneseTokenizer.load(str(tmp_path))
    hub_tokenizer = AutoTokenizer.from_pretrained(str(tmp_path))
    texts = [line.rstrip("\n") for line in open(GSD_DIR / "text" / "test.txt", encoding="utf-8")][:48]
    ids = [hub_tokenizer(t)["input_ids"][:126] for t in texts]
    assert ids == [[2] + e.token_ids[:124] + [3] if len(e.token_ids) > 124 else [2] + e.token_ids + [3]
                   for e in ours.encode_many(texts)]
    length = max(map(len, ids))
    input_ids = np.array([row + [0] * (length - len(row)) for row in ids], np.int32)
    mask = (input_ids > 0).astype(np.int32)

    tagger = TokenTagger(checkpoint.model, 3)
    tagger.build_variables()
    checkpoint.load_encoder(tagger.embeddings, tagger.encoder)
    hidden = tagger.encode({"input_ids": input_ids, "input_mask": mask,
                            "segment_ids": np.zeros_like(input_ids)}).numpy()
    with torch.no_grad():
        expected = base_model(reference)(input_ids=torch.tensor(input_ids, dtype=torch.long),
                                         attention_mask=torch.tensor(mask)).last_hidden_state.numpy()
    assert np.abs(hidden - expected)[mask.astype(bool)].max() <= 1e-4


def small_gsd(directory, sentences: dict[str, int]):
    """The first sentences of each GSD split, in its own .ne.conllu files."""
    directory.mkdir()
    for split, count in sentences.items():
        blocks = (GSD_DIR / f"ja_gsd-ud-{split}.ne.conllu").read_text(encoding="utf-8").split("\n\n")
        (directory / f"ja_gsd-ud-{split}.ne.conllu").write_text("\n\n".join(blocks[:count]) + "\n\n",
                                                                encoding="utf-8")
    return directory


def cli(*argv):
    assert run([str(a) for a in argv], registered_commands()) == 0, argv


@pytest.mark.parametrize("kind, mecab_dic", [("electra", "ipadic"), ("electra-without-projection", "unidic_lite"),
                                             ("bert", "unidic_lite")])
def test_a_hub_checkpoint_fine_tunes_exports_and_serves(tmp_path, tokenizer, kind, mecab_dic):
    hub = tmp_path / "hub"
    save_hub_model(hub, kind, tokenizer.vocab, mecab_dic)
    gsd = small_gsd(tmp_path / "gsd", {"train": 160, "dev": 32, "test": 32})
    cli("ner-data", "--gsd", gsd, "--tokenizer", hub, "--out", tmp_path / "ner", "--max-seq-length", 64)
    assert json.load(open(tmp_path / "ner/tokenizer/tokenizer_config.json"))["mecab_kwargs"]["mecab_dic"] == mecab_dic
    cli("finetune", "--data", tmp_path / "ner", "--init-checkpoint", hub, "--out", tmp_path / "finetuned",
        "--config", DEBUG_CONFIG, "--num-epochs", 1)
    model_config = json.load(open(tmp_path / "finetuned/model_config.json"))
    assert model_config["init"] == {"kind": "hf", "path": str(hub)}
    assert model_config["model"]["hidden_act"] == ("gelu_new" if kind == "electra" else "gelu")
    cli("export", "--model", tmp_path / "finetuned", "--export-dir", tmp_path / "export")
    texts = [line.rstrip("\n") for line in open(GSD_DIR / "text" / "test.txt", encoding="utf-8")][:20]
    in_process = EntityClient.from_export(str(tmp_path / "export"))
    with ModelVersions(str(tmp_path / "export"), "ner") as versions, \
            ModelServer(versions, grpc_port=0, rest_port=0) as server:
        served = EntityClient.for_server(f"127.0.0.1:{server.grpc_port}", "grpc", "ner",
                                         str(tmp_path / "export/1/assets"))
        assert served.predict(texts) == in_process.predict(texts)
        served.close()


def test_pretraining_starts_from_an_exported_pair_then_resumes_its_own_checkpoints(
        tmp_path, pretrain_dir, pretraining_data, debug_config, capsys):
    from export.hf_export import export_hf
    from pretrain.trainer import train

    export_hf(pretrain_dir, str(tmp_path / "hf"))
    source, _, _ = restore_pretrainer(pretrain_dir, "--model")
    # Warm-up makes step 1's learning rate 0, so after one step the weights are still the imported ones.
    config = dataclasses.replace(debug_config, pretrain=dataclasses.replace(
        debug_config.pretrain, num_train_steps=1, warmup_steps=10, save_checkpoints_steps=1))
    train(config, pretraining_data, str(tmp_path / "continued"), init_checkpoint=str(tmp_path / "hf"))
    assert f"pretrain: starting from {tmp_path}/hf/discriminator and {tmp_path}/hf/generator" in capsys.readouterr().out
    continued, _, step = restore_pretrainer(str(tmp_path / "continued"), "--model")
    assert step == 1
    for ours, theirs in zip(continued.weights, source.weights, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=ours.path)

    train(dataclasses.replace(config, pretrain=dataclasses.replace(config.pretrain, num_train_steps=2)),
          pretraining_data, str(tmp_path / "continued"), init_checkpoint=str(tmp_path / "hf"))
    out = capsys.readouterr().out
    assert "resumed from" in out and "--init-checkpoint applies to a fresh start only" in out
    assert "starting from" not in out


def break_bin_only(hub):
    os.remove(hub / "model.safetensors")
    (hub / "pytorch_model.bin").write_bytes(b"not loaded")


def break_model_type(hub):
    config = json.load(open(hub / "config.json"))
    json.dump({**config, "model_type": "roberta"}, open(hub / "config.json", "w"))


def break_vocab_size(hub):
    config = json.load(open(hub / "config.json"))
    json.dump({**config, "vocab_size": config["vocab_size"] + 1}, open(hub / "config.json", "w"))


def break_missing_shard(hub):
    from safetensors.numpy import load_file, save_file

    tensors = load_file(hub / "model.safetensors")
    keys = sorted(tensors)
    save_file({k: tensors[k] for k in keys[:10]}, hub / "model-00001-of-00002.safetensors", metadata={"format": "pt"})
    json.dump({"metadata": {}, "weight_map": {k: f"model-0000{1 + (i >= 10)}-of-00002.safetensors"
                                              for i, k in enumerate(keys)}},
              open(hub / "model.safetensors.index.json", "w"))
    os.remove(hub / "model.safetensors")


def break_tensor_shape(hub):
    from safetensors.numpy import load_file, save_file

    tensors = load_file(hub / "model.safetensors")
    key = "electra.encoder.layer.1.intermediate.dense.weight"
    tensors[key] = np.ascontiguousarray(tensors[key].T)
    save_file(tensors, hub / "model.safetensors", metadata={"format": "pt"})


def break_tokenizer_type(hub):
    config = json.load(open(hub / "tokenizer_config.json"))
    json.dump({**config, "word_tokenizer_type": "sudachi"}, open(hub / "tokenizer_config.json", "w"))


@pytest.mark.parametrize("damage, message", [
    (break_bin_only, "--init-checkpoint {hub}: only pytorch_model.bin, a pickle, which electra-ja does not load; "
                     "convert it"),
    (break_model_type, "--init-checkpoint {hub}/config.json: model_type 'roberta'; electra-ja imports electra and "
                       "bert models"),
    (break_vocab_size, "--init-checkpoint {hub}/config.json: vocab_size is 4001, but vocab.txt has 4000 tokens"),
    (break_missing_shard, "{hub}/model.safetensors.index.json: names shard model-00002-of-00002.safetensors, "
                          "which is not in {hub}"),
    (break_tensor_shape, "--init-checkpoint {hub}: tensor electra.encoder.layer.1.intermediate.dense.weight has "
                         "shape [64, 128], its config.json's sizes give [128, 64]"),
    (break_tokenizer_type, "--init-checkpoint {hub}/tokenizer_config.json: word_tokenizer_type is 'sudachi'"),
])
def test_a_bad_hub_checkpoint_is_one_line_and_nothing_is_written(tmp_path, capsys, tokenizer, ner_dir, damage,
                                                                 message):
    hub = tmp_path / "hub"
    save_hub_model(hub, "electra", tokenizer.vocab, "ipadic")
    shutil.copy(f"{ner_dir[0]}/tokenizer/vocab.txt", hub / "vocab.txt")  # the data's own vocabulary
    damage(hub)
    code = run(["finetune", "--data", ner_dir[0], "--init-checkpoint", str(hub), "--out", str(tmp_path / "out"),
                "--config", str(DEBUG_CONFIG)], registered_commands())
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "Traceback" not in "\n".join(err)
    assert err[-1].startswith("electra-ja finetune: error: " + message.format(hub=hub))
    assert not (tmp_path / "out").exists()


def test_config_defaults_are_transformers_own():
    for model_type, config_class in (("electra", ElectraConfig), ("bert", BertConfig)):
        defaults = config_class().to_dict()
        assert {key: defaults[key] for key in CONFIG_DEFAULTS[model_type]} == CONFIG_DEFAULTS[model_type]


def test_importing_and_exporting_never_import_torch(tmp_path, tokenizer, pretrain_dir):
    """torch is the reference implementation of the tests, never a dependency of electra-ja: fine-tuning from a Hub
    checkpoint and export-hf run in fresh processes without loading it (transformers' config classes would)."""
    import subprocess
    import sys

    save_hub_model(tmp_path / "hub", "bert", tokenizer.vocab, "ipadic")
    gsd = small_gsd(tmp_path / "gsd", {"train": 40, "dev": 8, "test": 8})
    cli("ner-data", "--gsd", gsd, "--tokenizer", tmp_path / "hub", "--out", tmp_path / "ner", "--max-seq-length", 64)
    commands = [["finetune", "--data", str(tmp_path / "ner"), "--init-checkpoint", str(tmp_path / "hub"), "--out",
                 str(tmp_path / "finetuned"), "--config", str(DEBUG_CONFIG), "--set", "finetune.num_epochs=1"],
                ["export-hf", "--model", pretrain_dir, "--out", str(tmp_path / "hf")]]
    for argv in commands:
        check = ("import sys; from data_prep.console import main; code = main(sys.argv[1:]); "
                 "print('torch loaded' if 'torch' in sys.modules else 'no torch'); sys.exit(code)")
        result = subprocess.run([sys.executable, "-c", check, *argv], capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.strip().splitlines()[-1] == "no torch", argv[0]
