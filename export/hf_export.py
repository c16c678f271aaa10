"""`electra-ja export-hf`: a pretrain or fine-tuned dir as transformers model dirs, to publish on the Hugging Face Hub.

A pretrain dir gives `OUT/discriminator` (ElectraForPreTraining) and `OUT/generator` (ElectraForMaskedLM, whose
embeddings are the discriminator's: the pretrainer shares one table); a fine-tuned dir gives `OUT` itself
(ElectraForTokenClassification for a tagger, ElectraForSequenceClassification for a sentence classifier, with
`id2label`/`label2id` from labels.json). Each holds `config.json`,
`model.safetensors` (never a pickle), the tokenizer files `AutoTokenizer` loads as BertJapaneseTokenizer, and a
model card `README.md`. OUT is written under a temporary name and renamed, as every stage's output.

Example:
    export_hf("build/demo/pretrain", "build/demo/hf")      # build/demo/hf/{discriminator,generator}
    # then: transformers.AutoModelForPreTraining.from_pretrained("build/demo/hf/discriminator")
"""

import dataclasses
import math

import numpy as np
import safetensors.numpy
from tensorflow.io import gfile

from data_prep import storage
from data_prep.config import ModelConfig
from data_prep.errors import InputError
from data_prep.tokenizer import PAD, JapaneseTokenizer
from finetune.model import SequenceClassifier
from finetune.tasks import VALID_BIO
from finetune.trainer import load_finetuned
from pretrain.hf_checkpoint import CONFIG_FILE, WEIGHTS_FILE, hf_config, hf_tensors
from pretrain.model import EncoderSize
from pretrain.model_dir import CHECKPOINTS_DIR, restore_pretrainer
from pretrain.tf1_checkpoint import (dense_tf1_names, discriminator_tf1_names, embeddings_tf1_names,
                                     generator_tf1_names, rtd_head_tf1_names)

# GELU(z) = z·Φ(z) equals z in float32 from here on; see classification_head_tensors.
GELU_IS_IDENTITY_FROM = 10.0


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
    model, description, labels = load_finetuned(model_dir)
    tokenizer = JapaneseTokenizer.load(storage.join(model_dir, "tokenizer"), "--model")
    results = storage.read_json(storage.join(model_dir, "results.json"), "--model")
    classifier = isinstance(model, SequenceClassifier)
    role, architecture = (("text-classification", "ElectraForSequenceClassification") if classifier else
                          ("token-classification", "ElectraForTokenClassification"))
    head = (classification_head_tensors(model) if classifier else
            hf_tensors(dense_tf1_names("classifier", model.classifier)))
    config = {**_config(model.config, EncoderSize.discriminator(model.config), tokenizer),
              "id2label": dict(enumerate(labels)), "label2id": {name: i for i, name in enumerate(labels)},
              "classifier_dropout": description.get("finetune", {}).get("dropout")}
    tensors = {**hf_tensors(discriminator_tf1_names(model.embeddings, model.encoder)), **head}
    card = _card(role, architecture, model.config, tokenizer, _finetuning_facts(description, results, classifier))
    return [HfModel("", architecture, config, tensors, card)], tokenizer


def classification_head_tensors(classifier: SequenceClassifier) -> dict[str, np.ndarray]:
    """Our head, dense([CLS]), as transformers' ElectraClassificationHead, out_proj(GELU(dense([CLS]))), computes it.

    dense becomes the identity plus a shift s that keeps every GELU input above GELU_IS_IDENTITY_FROM, where
    GELU(z) = z·Φ(z) is z itself in float32 (1 − Φ(10) ≈ 8e-24); out_proj's bias takes s back off. The shift is
    exact, not tuned: the encoder ends in a LayerNorm, whose i-th output is at most |γᵢ|·√(H − 1) + |βᵢ| in size.
    Fine-tuning on in transformers starts from our classifier; only its two dropouts (ours has one) differ.
    """
    norm = classifier.encoder.blocks[-1]._feedforward_layer_norm
    gamma, beta = (np.asarray(v.numpy(), np.float64) for v in (norm.gamma, norm.beta))
    shift = (np.abs(gamma) * math.sqrt(gamma.size - 1) + np.abs(beta) + GELU_IS_IDENTITY_FROM).astype(np.float32)
    kernel = np.asarray(classifier.classifier.kernel.numpy(), np.float64)
    bias = np.asarray(classifier.classifier.bias.numpy(), np.float64)
    return {"classifier.dense.weight": np.eye(gamma.size, dtype=np.float32),
            "classifier.dense.bias": shift,
            "classifier.out_proj.weight": np.ascontiguousarray(kernel.T, np.float32),
            "classifier.out_proj.bias": (bias - shift.astype(np.float64) @ kernel).astype(np.float32)}


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


def _finetuning_facts(description: dict, results: dict, classifier: bool) -> list[tuple[str, str]]:
    finetune, init = description.get("finetune", {}), description.get("init", {})
    facts = [("initialised from", f"{init.get('kind', '?')} `{init.get('path')}`"),
             ("fine-tuning data", f"`{results.get('data', '?')}`"),
             ("epochs, batch size, peak rate", f"{finetune.get('num_epochs', '?')}, {finetune.get('batch_size', '?')}, "
                                               f"{finetune.get('learning_rate', '?')}"),
             ("window length", str(description.get("max_seq_length", "?")))]
    decoding = ("each sentence's likeliest valid BIO sequence" if results.get("decoding") == VALID_BIO
                else "each word's argmax label")
    for split in ("dev", "test"):
        if split in results:
            s = results[split]
            facts.append((f"{split} accuracy, macro-F1", f"{s['accuracy']:.4f}, {s['macro_f1']:.4f}") if classifier else
                         (f"{split} entity F1 (exact character spans; {decoding})",
                          f"{s['f1']:.4f} (precision {s['precision']:.4f}, recall {s['recall']:.4f})"))
    summary, metric = results.get("summary", {}), "accuracy" if classifier else "f1"
    if len(results.get("trials", [])) > 1 and "test" in summary:
        score = summary["test"][metric]
        facts.append((f"test {metric} over {len(results['trials'])} seeds", f"{score['mean']:.4f} ± {score['std']:.4f}"))
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
    "text-classification": ("from transformers import pipeline\n"
                            "classify = pipeline(\"text-classification\", model=MODEL)\n"
                            "# One window: electra-ja's predict averages the windows of a longer text instead.\n"
                            "classify(\"吾輩は猫である。名前はまだ無い。\", truncation=True)"),
}


def _card(role: str, architecture: str, model: ModelConfig, tokenizer: JapaneseTokenizer,
          facts: list[tuple[str, str]]) -> str:
    size = EncoderSize.generator(model) if role == "generator" else EncoderSize.discriminator(model)
    dictionary = tokenizer.splitter.mecab_dic
    pipeline = {"generator": "fill-mask", "token-classification": "token-classification",
                "text-classification": "text-classification"}.get(role)
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
