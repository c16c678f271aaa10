"""The export contract: what a SavedModel from `electra-ja export` offers a server and its clients.

Plain names and helpers without TensorFlow, so serving (and any client) can import them without training code.

Layout: BASE_PATH/<version>/saved_model.pb (TF Serving's), with
- signature `serving_default`: int32 [-1, -1] inputs input_ids, input_mask, segment_ids, labeled_positions (the
  tagger's own input names, finetune.model.INPUTS) -> chunk_predictions int64 [-1, -1] (each labeled position's
  argmax label id) and chunk_probs float32 [-1, -1, num_labels]; the seed's names, any sequence length up to
  model_config.json's max_position_embeddings. `predict` decodes chunk_probs, a sentence at a time, into the
  likeliest valid BIO sequence (data_prep.bio.best_labels), which can differ from chunk_predictions;
- or, for a sentence classifier (labels.json "task": "classification"), `serving_default`: int32 [-1, -1]
  input_ids, input_mask, segment_ids -> `predictions` int64 [-1] (a label id per window) and `probabilities`
  float32 [-1, num_labels]; a text of several windows is labeled by the mean of its windows' probabilities
  (serving/classifier_client.py);
- signature `labels`: int32 [-1] `label_ids` -> string [-1] `labels`, so a client that reaches only the server
  learns the label names (num_labels is chunk_probs' last dimension in the model metadata);
- assets/: vocab.txt, tokenizer_config.json (a BertJapaneseTokenizer dir), labels.json, model_config.json.

Example:
    version_names(["1", "007", "tmp"])           # {1: "1", 7: "007"}
"""

import re

SERVING_SIGNATURE = "serving_default"
LABELS_SIGNATURE = "labels"
PREDICTIONS = "chunk_predictions"
PROBABILITIES = "chunk_probs"
CLASSIFIER_PREDICTIONS = "predictions"
CLASSIFIER_PROBABILITIES = "probabilities"
# (predictions, probabilities) output names of each head's serving_default.
TAGGER_OUTPUTS = (PREDICTIONS, PROBABILITIES)
CLASSIFIER_OUTPUTS = (CLASSIFIER_PREDICTIONS, CLASSIFIER_PROBABILITIES)
CLASSIFICATION = "classification"  # labels.json "task" of a sentence classifier
LABEL_IDS = "label_ids"
LABEL_NAMES = "labels"
ASSETS_DIR = "assets"
ASSET_FILES = ("vocab.txt", "tokenizer_config.json", "labels.json", "model_config.json")


# ASCII digits only, as tensorflow_model_server parses them: str.isdigit would also take "²", which int() refuses.
VERSION_NAME = re.compile(r"[0-9]+")


def version_names(names: list[str]) -> dict[int, str]:
    """Version number -> directory name among `names` (a directory keeps its name: "007" is version 7)."""
    stripped = (name.rstrip("/") for name in names)
    return {int(name): name for name in stripped if VERSION_NAME.fullmatch(name)}
