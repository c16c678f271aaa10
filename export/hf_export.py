"""`electra-ja export-hf`: a pretrain or fine-tuned dir as transformers model dirs, to publish on the Hugging Face Hub.

A pretrain dir gives `OUT/discriminator` (ElectraForPreTraining) and `OUT/generator` (ElectraForMaskedLM, whose
embeddings are the discriminator's: the pretrainer shares one table); a fine-tuned dir gives `OUT` itself
(ElectraForTokenClassification, with `id2label`/`label2id` from labels.json). Each holds `config.json`,
`model.safetensors` (never a pickle), the tokenizer files `AutoTokenizer` loads as BertJapaneseTokenizer, and a
model card `README.md`. OUT is written under a temporary name and renamed, as every stage's output.

Example:
    export_hf("build/demo/pretrain", "build/demo/hf")      # build/demo/hf/{discriminator,generator}
    # then: transformers.AutoModelForPreTraining.from_pretrained("build/demo/hf/discriminator")
"""

import dataclasses

import safetensors.numpy
from tensorflow.io import gfile

from data_prep import storage
from data_prep.config import ModelConfig
from data_prep.errors import InputError
from data_prep.tokenizer import PAD, JapaneseTokenizer
from finetune.model import SequenceClassifier
from finetune.trainer import load_finetuned
from pretrain.hf_checkpoint import CONFIG_FILE, WEIGHTS_FILE, hf_config, hf_tensors
from pretrain.model import EncoderSize
from pretrain.model_dir import CHECKPOINTS_DIR, restore_pretrainer
from pretrain.tf1_checkpoint import (dense_tf1_names, discriminator_tf1_names, embeddings_tf1_names,
                                     generator_tf1_names, rtd_head_tf1_names)


@dataclasses.dataclass(frozen=True)
class HfModel:
    """One transformers dir to write: its class, config fields, tensors and card."""

    subdir: str  # "" for OUT itself
    architecture: str
    config: dict
    tensors: dict
    card: str


def export_hf(model_dir: str, out: str) -> list[str]:
    """Writes the transformers dirs of `model_dir` under `out`; returns their paths."""
    if gfile.exists(storage.join(model_dir, "results.json")):
        models, tokenizer = _finetuned_models(model_dir)
    elif gfile.exists(storage.join(model_dir, CHECKPOINTS_DIR)):
        models, tokenizer = _pretrained_models(model_dir)
    else:
        raise InputError(f"--model {model_dir}: neither a fine-tuned dir (results.json) nor a pretrain dir "
                         f"({CHECKPOINTS_DIR}/)")
    if gfile.exists(out):
        raise InputError(f"--out {out}: exists (export-hf never overwrites; pick a new directory or delete it)")
    storage.make_output_dir(storage.parent(out), "--out")
    tmp = storage.temp_name(out)
    try:
        for model in models:
            _write(storage.join(tmp, model.subdir) if model.subdir else tmp, model, tokenizer)
        storage.publish_dir(tmp, out)
    finally:
        if gfile.exists(tmp):
            gfile.rmtree(tmp)
    return [storage.join(out, model.subdir) if model.subdir else out for model in models]


def _pretrained_models(model_dir: str) -> tuple[list[HfModel], JapaneseTokenizer]:
    pretrainer, description, step = restore_pretrainer(model_dir, "--model")
    tokenizer = JapaneseTokenizer.load(storage.join(model_dir, "tokenizer"), "--model")
    model = pretrainer.config
    facts = _pretraining_facts(description, step)
    discriminator = {**discriminator_tf1_names(pretrainer.embeddings, pretrainer.discriminator),
                     **rtd_head_tf1_names(pretrainer)}
    generator = {**embeddings_tf1_names(pretrainer.embeddings), **generator_tf1_names(pretrainer)}
    return [
        HfModel("discriminator", "ElectraForPreTraining", _config(model, EncoderSize.discriminator(model), tokenizer),
                hf_tensors(discriminator), _card("discriminator", "ElectraForPreTraining", model, tokenizer, facts)),
        HfModel("generator", "ElectraForMaskedLM", _config(model, EncoderSize.generator(model), tokenizer),
                hf_tensors(generator), _card("generator", "ElectraForMaskedLM", model, tokenizer, facts)),
    ], tokenizer


def _finetuned_models(model_dir: str) -> tuple[list[HfModel], JapaneseTokenizer]:
    tagger, description, labels = load_finetuned(model_dir)
    if isinstance(tagger, SequenceClassifier):
        raise InputError(f"--model {model_dir}: a sentence classifier, which export-hf cannot write yet: "
                         "transformers' ElectraForSequenceClassification head (dense, GELU, dense) is not the "
                         "[CLS] + dense head it was trained with; serve it with `electra-ja export` instead")
    tokenizer = JapaneseTokenizer.load(storage.join(model_dir, "tokenizer"), "--model")
    results = storage.read_json(storage.join(model_dir, "results.json"), "--model")
    names = {**discriminator_tf1_names(tagger.embeddings, tagger.encoder),
             **dense_tf1_names("classifier", tagger.classifier)}
    config = {**_config(tagger.config, EncoderSize.discriminator(tagger.config), tokenizer),
              "id2label": dict(enumerate(labels)), "label2id": {name: i for i, name in enumerate(labels)},
              "classifier_dropout": description.get("finetune", {}).get("dropout")}
    facts = _finetuning_facts(description, results)
    card = _card("token-classification", "ElectraForTokenClassification", tagger.config, tokenizer, facts)
    return [HfModel("", "ElectraForTokenClassification", config, hf_tensors(names), card)], tokenizer


def _config(model: ModelConfig, size: EncoderSize, tokenizer: JapaneseTokenizer) -> dict:
    return {**hf_config(model, size), "pad_token_id": tokenizer.id_of(PAD), "tokenizer_class": "BertJapaneseTokenizer"}


def _write(directory: str, model: HfModel, tokenizer: JapaneseTokenizer) -> None:
    gfile.makedirs(directory)
    storage.write_json(storage.join(directory, CONFIG_FILE), {"architectures": [model.architecture], **model.config})
    with gfile.GFile(storage.join(directory, WEIGHTS_FILE), "wb") as f:
        f.write(safetensors.numpy.save(model.tensors, metadata={"format": "pt"}))
    tokenizer.save(directory)
    storage.write_text(storage.join(directory, "README.md"), model.card)


def _pretraining_facts(description: dict, step: int) -> list[tuple[str, str]]:
    pretrain, data = description.get("pretrain", {}), description.get("data", {})
    return [("pretraining steps", f"{step:,}"),
            ("batch size", str(pretrain.get("batch_size", "?"))),
            ("peak learning rate", str(pretrain.get("learning_rate", "?"))),
            ("mask rate", str(pretrain.get("mask_prob", "?"))),
            ("sequence length", str(description.get("max_seq_length", "?"))),
            ("pretraining examples", f"{data['examples']:,}" if "examples" in data else "not recorded"),
            ("corpus", ", ".join(f"`{path}`" for path in data.get("corpus", [])) or "not recorded")]


def _finetuning_facts(description: dict, results: dict) -> list[tuple[str, str]]:
    finetune, init = description.get("finetune", {}), description.get("init", {})
    facts = [("initialised from", f"{init.get('kind', '?')} `{init.get('path')}`"),
             ("fine-tuning data", f"`{results.get('data', '?')}`"),
             ("epochs, batch size, peak rate", f"{finetune.get('num_epochs', '?')}, {finetune.get('batch_size', '?')}, "
                                               f"{finetune.get('learning_rate', '?')}"),
             ("window length", str(description.get("max_seq_length", "?")))]
    for split in ("dev", "test"):
        if split in results:
            s = results[split]
            facts.append((f"{split} entity F1 (exact character spans)",
                          f"{s['f1']:.4f} (precision {s['precision']:.4f}, recall {s['recall']:.4f})"))
    summary = results.get("summary", {})
    if len(results.get("trials", [])) > 1 and "test" in summary:
        f1 = summary["test"]["f1"]
        facts.append((f"test F1 over {len(results['trials'])} seeds", f"{f1['mean']:.4f} ± {f1['std']:.4f}"))
    return facts


_USAGE = {
    "discriminator": ("from transformers import AutoTokenizer, ElectraForPreTraining\n"
                      "tokenizer = AutoTokenizer.from_pretrained(MODEL)\n"
                      "model = ElectraForPreTraining.from_pretrained(MODEL)\n"
                      "logits = model(**tokenizer(\"吾輩は猫である。\", return_tensors=\"pt\")).logits  # > 0: replaced"),
    "generator": ("from transformers import pipeline\n"
                  "fill = pipeline(\"fill-mask\", model=MODEL)\n"
                  "fill(\"吾輩は[MASK]である。\")"),
    "token-classification": ("from transformers import AutoTokenizer, ElectraForTokenClassification\n"
                             "tokenizer = AutoTokenizer.from_pretrained(MODEL)\n"
                             "model = ElectraForTokenClassification.from_pretrained(MODEL)\n"
                             "# Trained on the first WordPiece of each MeCab word: read labels there.\n"
                             "logits = model(**tokenizer(\"ヘンリック・イプセンの劇詩\", return_tensors=\"pt\")).logits"),
}


def _card(role: str, architecture: str, model: ModelConfig, tokenizer: JapaneseTokenizer,
          facts: list[tuple[str, str]]) -> str:
    size = EncoderSize.generator(model) if role == "generator" else EncoderSize.discriminator(model)
    dictionary = tokenizer.splitter.mecab_dic
    pipeline = {"generator": "fill-mask", "token-classification": "token-classification"}.get(role)
    rows = [("architecture", f"`{architecture}`"),
            ("layers × hidden (heads, feed-forward)", f"{size.num_layers} × {size.hidden_size} "
                                                      f"({size.num_heads}, {size.intermediate_size})"),
            ("embedding size, vocabulary", f"{model.embedding_size}, {model.vocab_size:,} WordPieces"),
            ("activation", f"`{model.hidden_act}`"), *facts]
    return "\n".join([
        "---", "language: ja", "library_name: transformers", *([f"pipeline_tag: {pipeline}"] if pipeline else []),
        "tags:", "- electra", "- japanese", "- electra-ja", "---", "",
        f"# Japanese ELECTRA {role}", "",
        "Trained with electra-ja (TensorFlow 2) and exported with `electra-ja export-hf`. Set the licence your "
        "training data allows before publishing.", "",
        "| | |", "|---|---|", *[f"| {name} | {value} |" for name, value in rows], "",
        "## Tokenizer", "",
        f"BertJapaneseTokenizer: MeCab words (fugashi, `{dictionary}` dictionary) split into WordPieces, after NFKC. "
        f"Install its dictionary first: `pip install fugashi {dictionary.replace('_', '-')}`.", "",
        "## Use", "", "```python", "MODEL = \"path/or/hub-id\"", _USAGE[role], "```", ""])
