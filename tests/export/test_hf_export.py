"""`electra-ja export-hf`: transformers loads every exported model with no missing or unexpected keys and computes
what our models compute; a pretrain dir exported and imported back gives the same encoder; a fine-tuned dir's
export finds the same entities through transformers' token-classification pipeline on every GSD test sentence."""

import dataclasses
import json
import os

import numpy as np
import pytest
import torch
from transformers import (AutoTokenizer, BertJapaneseTokenizer, ElectraForMaskedLM, ElectraForPreTraining,
                          ElectraForTokenClassification, pipeline)

from data_prep.bio import decode_bio
from data_prep.config import NerDataConfig
from data_prep.console import registered_commands, run
from data_prep.fast_tokenizer import fast_tokenizer
from data_prep.gsd import load_gsd
from data_prep.ner_data import build_ner_data
from export.hf_export import export_hf
from finetune.data import NerData
from finetune.evaluation import word_probabilities
from finetune.trainer import finetune, load_finetuned
from pretrain.hf_checkpoint import load_hf_pair, pretrainer_config
from pretrain.model import ElectraPretrainer
from pretrain.model_dir import restore_pretrainer
from pretrain.trainer import hf_pair
from tests.conftest import GSD_DIR


def loaded_cleanly(model_class, directory):
    model, info = model_class.from_pretrained(directory, output_loading_info=True)
    assert {key: value for key, value in info.items() if value} == {}, directory
    return model.eval()


def padded_batch(tokenizer, texts):
    ids = [[tokenizer.id_of("[CLS]")] + tokenizer.encode(t).token_ids[:60] + [tokenizer.id_of("[SEP]")] for t in texts]
    length = max(map(len, ids))
    input_ids = np.array([row + [0] * (length - len(row)) for row in ids], np.int32)
    return input_ids, (input_ids > 0).astype(np.int32), np.zeros_like(input_ids)


@pytest.fixture(scope="module")
def exported_pretrain(pretrain_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("hf") / "pretrain")
    assert export_hf(pretrain_dir, out) == [f"{out}/discriminator", f"{out}/generator"]
    return out


def test_pretrain_export_loads_in_transformers_and_computes_our_logits(exported_pretrain, pretrain_dir, tokenizer):
    pretrainer, _, step = restore_pretrainer(pretrain_dir, "--model")
    discriminator = loaded_cleanly(ElectraForPreTraining, f"{exported_pretrain}/discriminator")
    generator = loaded_cleanly(ElectraForMaskedLM, f"{exported_pretrain}/generator")
    for part in ("discriminator", "generator"):
        assert isinstance(AutoTokenizer.from_pretrained(f"{exported_pretrain}/{part}"), BertJapaneseTokenizer)
        assert sorted(os.listdir(f"{exported_pretrain}/{part}")) == ["README.md", "config.json", "model.safetensors",
                                                                   "tokenizer_config.json", "vocab.txt"]
        config = json.load(open(f"{exported_pretrain}/{part}/config.json"))
        assert config["hidden_act"] == "gelu_new" and config["model_type"] == "electra"
    card = open(f"{exported_pretrain}/discriminator/README.md").read()
    assert f"| pretraining steps | {step} |" in card and "ElectraForPreTraining" in card

    ids, mask, segments = padded_batch(tokenizer, [line for line in open(GSD_DIR / "text" / "test.txt")][:16])
    with torch.no_grad():
        torch_inputs = {"input_ids": torch.tensor(ids, dtype=torch.long), "attention_mask": torch.tensor(mask),
                        "token_type_ids": torch.tensor(segments, dtype=torch.long)}
        rtd_reference = discriminator(**torch_inputs).logits.numpy()
        mlm_reference = generator(**torch_inputs).logits.numpy()
    rtd = pretrainer.rtd_head(pretrainer.encode(ids, mask, segments)).numpy()
    every_position = np.tile(np.arange(ids.shape[1]), (ids.shape[0], 1))
    mlm = pretrainer.mlm_head(pretrainer.generator(pretrainer.embeddings(ids, segments), mask),
                              mask_positions=every_position).numpy()
    real = mask.astype(bool)
    assert np.abs(rtd - rtd_reference)[real].max() <= 1e-4
    assert np.abs(mlm - mlm_reference)[real].max() <= 1e-4


def test_a_pretrain_export_imported_back_gives_identical_encoders(exported_pretrain, pretrain_dir, tokenizer):
    original, description, _ = restore_pretrainer(pretrain_dir, "--model")
    discriminator, generator = hf_pair(exported_pretrain, None)
    config = pretrainer_config(discriminator, generator)
    assert config == dataclasses.replace(original.config, hidden_dropout=config.hidden_dropout)
    imported = ElectraPretrainer(config, original.special_ids)
    imported.build_variables()
    assert load_hf_pair(imported, discriminator, generator) == []
    ids, mask, segments = padded_batch(tokenizer, [line for line in open(GSD_DIR / "text" / "dev.txt")][:16])
    difference = imported.encode(ids, mask, segments).numpy() - original.encode(ids, mask, segments).numpy()
    assert np.abs(difference).max() <= 1e-5
    for ours, theirs in zip(imported.weights, original.weights, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=ours.path)


@pytest.fixture(scope="module")
def whole_sentence_tagger(tmp_path_factory, ner_dir, tokenizer_dir, debug_config):
    """A debug tagger with 512 positions, so transformers can run every test sentence whole, and ner-data whose
    windows hold whole sentences: (fine-tuned dir, that ner-data dir)."""
    out = str(tmp_path_factory.mktemp("whole"))
    config = dataclasses.replace(debug_config, model=dataclasses.replace(debug_config.model,
                                                                         max_position_embeddings=512),
                                 finetune=dataclasses.replace(debug_config.finetune, num_epochs=1))
    finetune(config, ner_dir[0], "random", f"{out}/finetuned")
    stats = build_ner_data(load_gsd(str(GSD_DIR)), tokenizer_dir, f"{out}/ner", NerDataConfig(max_seq_length=512))
    assert stats["test"]["sentences_split_into_windows"] == 0
    return f"{out}/finetuned", f"{out}/ner"


def test_a_tagger_exported_to_transformers_gives_our_logits_and_entities(whole_sentence_tagger, tmp_path):
    finetuned, ner = whole_sentence_tagger
    out = str(tmp_path / "hf")
    assert export_hf(finetuned, out) == [out]
    model = loaded_cleanly(ElectraForTokenClassification, out)
    tagger, _, labels = load_finetuned(finetuned)
    assert [model.config.id2label[i] for i in range(len(labels))] == labels
    assert "test entity F1 (exact character spans; each sentence's likeliest valid BIO sequence)" in open(
        f"{out}/README.md").read()

    data = NerData.load(ner)
    features, _ = next(iter(data.dataset("test", 32)))
    with torch.no_grad():
        reference = model(input_ids=torch.tensor(features["input_ids"].numpy(), dtype=torch.long),
                          attention_mask=torch.tensor(features["input_mask"].numpy())).logits.numpy()
    ours = tagger(features).numpy()
    at_words = np.take_along_axis(reference, features["labeled_positions"].numpy()[..., None], axis=1)
    real = np.arange(ours.shape[1])[None, :] < np.count_nonzero(features["labeled_positions"].numpy(), axis=1)[:, None]
    assert np.abs(ours - at_words)[real].max() <= 1e-4

    sentences = data.sentences("test")
    # transformers' pipeline labels each word by its argmax (no BIO constraint), so ours is decoded alike here.
    ours = [decode_bio([labels[i] for i in probs.argmax(-1)], s.words) for s, probs in
            zip(sentences, word_probabilities(tagger, data, "test", sentences))]
    tag = pipeline("token-classification", model=model, tokenizer=fast_tokenizer(out), aggregation_strategy="first")
    theirs = tag([s.text for s in sentences], batch_size=32)
    assert len(sentences) == 543 and sum(map(len, ours)) > 100
    mismatches = [(s.text, [(e.start, e.end, e.type) for e in mine],
                   [(e["start"], e["end"], e["entity_group"]) for e in found])
                  for s, mine, found in zip(sentences, ours, theirs)
                  if {(e.start, e.end, e.type) for e in mine} != {(e["start"], e["end"], e["entity_group"])
                                                                   for e in found}]
    assert mismatches == []


@pytest.mark.parametrize("argv, message", [
    (["export-hf", "--model", "{tmp}", "--out", "{tmp}/hf"], "--model {tmp}: neither a fine-tuned dir"),
    (["export-hf", "--model", "{finetuned}", "--out", "{tmp}"], "--out {tmp}: exists (export-hf never overwrites"),
])
def test_export_hf_refuses_with_one_line(capsys, tmp_path, finetuned_dir, argv, message):
    before = sorted(os.listdir(tmp_path))
    fill = {"tmp": str(tmp_path), "finetuned": finetuned_dir}
    assert run([a.format(**fill) for a in argv], registered_commands()) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message.format(**fill) in err[-1] and "Traceback" not in "\n".join(err)
    assert sorted(os.listdir(tmp_path)) == before



def test_export_hf_writes_to_gcs_and_imports_from_it(tmp_path, finetuned_dir):
    """gs:// as everywhere: written under a temporary name, then the whole dir; read back by the importer."""
    import subprocess
    import sys
    import urllib.request

    from tests.gcs_emulator import GcsEmulator

    console = "import sys; from data_prep.console import main; sys.exit(main())"
    with GcsEmulator(str(tmp_path)) as gcs:
        gcs.create_bucket("bucket")
        result = subprocess.run([sys.executable, "-c", console, "export-hf", "--model", finetuned_dir, "--out",
                                 "gs://bucket/hf"], capture_output=True, text=True, timeout=600, env=gcs.environment())
        assert result.returncode == 0, result.stderr[-2000:]
        listing = json.load(urllib.request.urlopen(f"http://127.0.0.1:{gcs.port}/storage/v1/b/bucket/o", timeout=10))
        names = sorted(item["name"] for item in listing["items"] if not item["name"].endswith("/"))
        assert [n for n in names if n.startswith("hf/")] == ["hf/README.md", "hf/config.json", "hf/model.safetensors",
                                                            "hf/tokenizer_config.json", "hf/vocab.txt"]
        assert not [n for n in names if ".tmp-" in n]
        check = ("from pretrain.hf_checkpoint import HfCheckpoint; from finetune.model import TokenTagger; "
                 "c = HfCheckpoint.open('gs://bucket/hf'); t = TokenTagger(c.model, 1); t.build_variables(); "
                 "c.load_encoder(t.embeddings, t.encoder); print(c.model.hidden_size)")
        result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=600,
                                env=gcs.environment())
        assert result.returncode == 0 and result.stdout.split()[-1] == "64", result.stderr[-2000:]
