"""Hugging Face transformers model dirs (`config.json` + `model.safetensors`, as `save_pretrained` writes them) read
into our layers, and our weights named and shaped as transformers keeps them, for `export-hf`.

transformers' ELECTRA and BERT are ports of google's TF1 graphs and keep their variable names with dots
("electra/encoder/layer_0/attention/self/query/kernel" is "electra.encoder.layer.0.attention.self.query.weight"),
so tf1_checkpoint's name tables serve both formats: `hf_key` renames, and a kernel is stored transposed ([out, in],
torch.nn.Linear's layout). Tensors go through the safetensors package as NumPy arrays; torch is never imported,
and a pickled `pytorch_model.bin` is refused.

Example:
    checkpoint = HfCheckpoint.open("downloads/electra-base-japanese-discriminator")
    checkpoint.model                                          # ModelConfig with its config.json's sizes
    checkpoint.load_encoder(tagger.embeddings, tagger.encoder)
"""

import dataclasses
import json
import math
import re
import struct

import numpy as np
import safetensors.numpy
from tensorflow.io import gfile

from data_prep import storage
from data_prep.config import ACTIVATION_CHOICES, ModelConfig
from data_prep.errors import InputError
from pretrain.model import LAYER_NORM_EPSILON, ElectraPretrainer, Embeddings, Encoder, EncoderSize
from pretrain.tf1_checkpoint import discriminator_tf1_names, generator_tf1_names, rtd_head_tf1_names

CONFIG_FILE = "config.json"
_COMMON_DEFAULTS = {"vocab_size": 30522, "num_hidden_layers": 12, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
                    "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12}
# transformers' defaults (ElectraConfig's and BertConfig's) for the keys a config.json may leave out. Importing those
# classes would import torch wherever it is installed, which electra-ja never does; a test compares the two.
CONFIG_DEFAULTS = {
    "electra": {**_COMMON_DEFAULTS, "embedding_size": 128, "hidden_size": 256, "num_attention_heads": 4,
                "intermediate_size": 1024},
    "bert": {**_COMMON_DEFAULTS, "hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072},
}
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
PICKLE_FILE = "pytorch_model.bin"
# Buffers older transformers versions saved with the weights; nothing to load.
BUFFERS = re.compile(r"embeddings\.(position_ids|token_type_ids)$")
# What google's TF1 names become in transformers (after the scope, which becomes the base model's prefix).
_RENAMES = ((r"discriminator_predictions/dense_1/", "discriminator_predictions/dense_prediction/"),
            (r"generator_predictions/output_bias$", "generator_lm_head/bias"),
            (r"/layer_(\d+)/", r"/layer/\1/"),
            (r"/(kernel|gamma)$", "/weight"),
            (r"/beta$", "/bias"),
            (r"_embeddings$", "_embeddings/weight"))
_VECTOR = re.compile(r"(/bias|/gamma|/beta|output_bias)$")
# safetensors' dtypes that its NumPy loader reads (BF16 has no NumPy type).
NUMPY_DTYPES = ("F64", "F32", "F16")


def hf_key(tf1_name: str, base: str = "electra.") -> str:
    """transformers' key for a google-research/electra variable name. `base` is the base model's prefix in the file
    ("electra.", "bert.", or "" for a bare ElectraModel); the generator's encoder is ElectraForMaskedLM's base."""
    name = re.sub(r"^(electra|generator)/", "", tf1_name)
    in_base_model = name != tf1_name
    for pattern, replacement in _RENAMES:
        name = re.sub(pattern, replacement, name)
    return (base if in_base_model else "") + name.replace("/", ".")


def hf_shape(tf1_name: str, shape) -> tuple[int, ...]:
    """The shape transformers stores a variable of ours in."""
    shape = tuple(int(d) for d in shape)
    if tf1_name.endswith("/kernel"):
        rows, columns = _matrix_shape(shape)
        return columns, rows
    if _VECTOR.search(tf1_name):
        return (math.prod(shape),)
    return shape


def to_hf(tf1_name: str, value: np.ndarray) -> np.ndarray:
    if tf1_name.endswith("/kernel"):
        return np.ascontiguousarray(value.reshape(_matrix_shape(value.shape)).T)
    return value.reshape(hf_shape(tf1_name, value.shape))


def from_hf(tf1_name: str, tensor: np.ndarray, shape) -> np.ndarray:
    """`tensor` (transformers' layout) as our variable of `shape` holds it."""
    if tf1_name.endswith("/kernel"):
        return tensor.T.reshape(shape)
    return tensor.reshape(shape)


def _matrix_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras' attention keeps its square [hidden, hidden] projections per head ([hidden, heads, size] or
    [heads, size, hidden]); every other kernel is already a matrix."""
    if len(shape) == 2:
        return shape
    side = math.isqrt(math.prod(shape))
    if side * side != math.prod(shape):
        raise ValueError(f"kernel of shape {shape} is not a per-head view of a square matrix")
    return side, side


def hf_tensors(names: dict, base: str = "electra.") -> dict[str, np.ndarray]:
    """Our variables by TF1 name -> transformers' float32 tensors by key, ready for safetensors."""
    return {hf_key(name, base): to_hf(name, np.asarray(variable.numpy(), np.float32))
            for name, variable in names.items()}


def hf_config(model: ModelConfig, size: EncoderSize) -> dict:
    """ElectraConfig's fields for an encoder of `size` with `model`'s embeddings (the inverse of `model_config`)."""
    return {"model_type": "electra", "vocab_size": model.vocab_size, "embedding_size": model.embedding_size, "hidden_size": size.hidden_size,
            "num_hidden_layers": size.num_layers, "num_attention_heads": size.num_heads,
            "intermediate_size": size.intermediate_size, "hidden_act": model.hidden_act,
            "hidden_dropout_prob": model.hidden_dropout, "attention_probs_dropout_prob": model.hidden_dropout,
            "max_position_embeddings": model.max_position_embeddings, "type_vocab_size": model.type_vocab_size,
            "layer_norm_eps": LAYER_NORM_EPSILON}


@dataclasses.dataclass
class HfCheckpoint:
    """One transformers model dir: its config (transformers' defaults filled in), our ModelConfig for its sizes,
    and its tensors by key."""

    directory: str
    flag: str
    config: dict
    model: ModelConfig
    base: str  # the prefix of its base model's keys: "electra.", "bert." or ""
    files: dict[str, str]  # key -> the safetensors file holding it
    headers: dict[str, dict]  # key -> its safetensors header entry (dtype, shape)

    @classmethod
    def is_hf_dir(cls, directory: str) -> bool:
        return gfile.exists(storage.join(directory, CONFIG_FILE))

    @classmethod
    def open(cls, directory: str, flag: str = "--init-checkpoint") -> "HfCheckpoint":
        where = f"{flag} {directory}"
        config = _full_config(storage.read_json(storage.join(directory, CONFIG_FILE), flag), f"{where}/{CONFIG_FILE}")
        model = model_config(config, f"{where}/{CONFIG_FILE}")
        _check_vocab_size(directory, model.vocab_size, where)
        files = _weight_files(directory, where)
        headers = {key: entry for path in sorted(set(files.values())) for key, entry in _header(path).items()}
        base = f"{config['model_type']}."
        if not any(key.startswith(base) for key in files):
            base = ""  # saved from a bare ElectraModel / BertModel
        return cls(directory, flag, config, model, base, files, headers)

    @property
    def where(self) -> str:
        return f"{self.flag} {self.directory}"

    def check(self, names: dict, base: str | None = None) -> None:
        """Raises InputError unless every variable of `names` (TF1 name -> variable) has a tensor of its shape, in
        a dtype NumPy can read; reads only the files' headers."""
        base = self.base if base is None else base
        missing = [hf_key(name, base) for name in names if hf_key(name, base) not in self.headers]
        if missing:
            raise InputError(f"{self.where}: no tensor {missing[0]}" + (f" (and {len(missing) - 1} more)"
                                                                         if len(missing) > 1 else "")
                             + f" in its safetensors; is it a {self.config['model_type']} model of its config's sizes?")
        for name, variable in names.items():
            key = hf_key(name, base)
            shape, expected = tuple(self.headers[key].get("shape", ())), hf_shape(name, variable.shape)
            if shape != expected:
                raise InputError(f"{self.where}: tensor {key} has shape {list(shape)}, its config.json's sizes "
                                 f"give {list(expected)}")
            if self.headers[key].get("dtype") not in NUMPY_DTYPES:
                raise InputError(f"{self.files[key]}: tensor {key} is {self.headers[key].get('dtype')}, which "
                                 "safetensors cannot give NumPy; save the model in float32 first "
                                 "(model.float().save_pretrained(DIR))")

    def load(self, names: dict, base: str | None = None) -> None:
        """Assigns every variable of `names` (TF1 name -> variable) from its transformers key."""
        base = self.base if base is None else base
        self.check(names, base)
        tensors = self._read([hf_key(name, base) for name in names])
        for name, variable in names.items():
            variable.assign(from_hf(name, tensors[hf_key(name, base)], variable.shape))

    def check_encoder(self, embeddings: Embeddings, encoder: Encoder) -> dict:
        """`check` for the base model's embeddings and encoder, and no base-model tensor left over (which means the
        config lies about the sizes); returns their names."""
        names = discriminator_tf1_names(embeddings, encoder)
        used = {hf_key(name, self.base) for name in names}
        encoder_part = re.compile(rf"^{re.escape(self.base)}(embeddings|embeddings_project|encoder)\.")
        left_over = sorted(key for key in self.files
                           if encoder_part.match(key) and key not in used and not BUFFERS.search(key))
        if left_over:
            raise InputError(f"{self.where}: tensor {left_over[0]} is not part of an encoder of its config.json's "
                             f"sizes ({len(left_over)} such tensors)")
        self.check(names)
        return names

    def load_encoder(self, embeddings: Embeddings, encoder: Encoder) -> None:
        self.load(self.check_encoder(embeddings, encoder))

    def has(self, names: dict) -> bool:
        return all(hf_key(name, self.base) in self.files for name in names)

    def _read(self, keys) -> dict[str, np.ndarray]:
        tensors, by_file = {}, {}
        for key in keys:
            by_file.setdefault(self.files[key], []).append(key)
        for path, wanted in by_file.items():
            with gfile.GFile(path, "rb") as f:
                data = f.read()
            try:
                loaded = safetensors.numpy.load(data)
            except Exception as error:  # safetensors' own SafetensorError for a damaged file
                raise InputError(f"{path}: not a readable safetensors file ({error})") from None
            tensors.update({key: loaded[key].astype(np.float32) for key in wanted})
        return tensors


def model_config(config: dict, where: str) -> ModelConfig:
    """Our encoder settings for a transformers ELECTRA or BERT config (BERT's embeddings are hidden-sized)."""
    act = config.get("hidden_act")
    if act not in ACTIVATION_CHOICES:
        raise InputError(f"{where}: hidden_act {act!r}; electra-ja computes {' or '.join(ACTIVATION_CHOICES)}")
    for key, value in (("layer_norm_eps", LAYER_NORM_EPSILON), ("position_embedding_type", "absolute")):
        if config.get(key, value) != value:
            raise InputError(f"{where}: {key} is {config[key]!r}; electra-ja's encoder has {value!r}")
    return ModelConfig(vocab_size=config["vocab_size"],
                       embedding_size=config.get("embedding_size", config["hidden_size"]),
                       hidden_size=config["hidden_size"], num_hidden_layers=config["num_hidden_layers"],
                       num_attention_heads=config["num_attention_heads"],
                       intermediate_size=config["intermediate_size"], hidden_act=act,
                       hidden_dropout=config["hidden_dropout_prob"],
                       max_position_embeddings=config["max_position_embeddings"],
                       type_vocab_size=config["type_vocab_size"], generator_hidden_fraction=1.0,
                       generator_layers_fraction=1.0)


def _full_config(config: dict, where: str) -> dict:
    """config.json with transformers' defaults for the keys it leaves out, as from_pretrained reads it."""
    if not isinstance(config, dict) or config.get("model_type") not in CONFIG_DEFAULTS:
        kind = config.get("model_type") if isinstance(config, dict) else None
        raise InputError(f"{where}: model_type {kind!r}; electra-ja imports {' and '.join(CONFIG_DEFAULTS)} models")
    return {**CONFIG_DEFAULTS[config["model_type"]], **config}


def _check_vocab_size(directory: str, vocab_size: int, where: str) -> None:
    vocab = storage.join(directory, "vocab.txt")
    if not gfile.exists(vocab):
        raise InputError(f"{where}: no vocab.txt (a transformers dir with BertJapaneseTokenizer files is expected)")
    with gfile.GFile(vocab, "r") as f:
        lines = sum(1 for _ in f)
    if lines != vocab_size:
        raise InputError(f"{where}/{CONFIG_FILE}: vocab_size is {vocab_size}, but vocab.txt has {lines} tokens")


def _weight_files(directory: str, where: str) -> dict[str, str]:
    """Tensor key -> its safetensors file, from model.safetensors or a sharded checkpoint's index."""
    single, index = storage.join(directory, WEIGHTS_FILE), storage.join(directory, WEIGHTS_INDEX_FILE)
    if gfile.exists(single):
        return dict.fromkeys(_header(single), single)
    if gfile.exists(index):
        weight_map = storage.read_json(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise InputError(f"{index}: no weight_map")
        for shard in sorted(set(weight_map.values())):
            if not gfile.exists(storage.join(directory, shard)):
                raise InputError(f"{index}: names shard {shard}, which is not in {directory}")
        return {key: storage.join(directory, shard) for key, shard in weight_map.items()}
    if gfile.exists(storage.join(directory, PICKLE_FILE)):
        raise InputError(f"{where}: only {PICKLE_FILE}, a pickle, which electra-ja does not load; convert it where "
                         "torch is installed: python -c \"from transformers import AutoModel; "
                         f"AutoModel.from_pretrained('{directory}').save_pretrained('{directory}')\" "
                         f"(writes {WEIGHTS_FILE})")
    raise InputError(f"{where}: no {WEIGHTS_FILE} or {WEIGHTS_INDEX_FILE}")


def _header(path: str) -> dict[str, dict]:
    """A safetensors file's header, tensor name -> {dtype, shape, data_offsets}, without reading its data."""
    with gfile.GFile(path, "rb") as f:
        size = f.read(8)
        try:
            header = json.loads(f.read(struct.unpack("<Q", size)[0])) if len(size) == 8 else None
        except (ValueError, struct.error, OverflowError):
            header = None
    if not isinstance(header, dict) or not all(isinstance(v, dict) for v in header.values()):
        raise InputError(f"{path}: not a safetensors file (no readable header)")
    return {key: entry for key, entry in header.items() if key != "__metadata__"}


def load_hf_pair(model: ElectraPretrainer, discriminator: HfCheckpoint, generator: HfCheckpoint) -> list[str]:
    """A discriminator (ElectraForPreTraining, or a bare encoder) and a generator (ElectraForMaskedLM) into the
    pretrainer; returns notes for the user (a missing RTD head starts from random weights)."""
    notes = []
    discriminator.load_encoder(model.embeddings, model.discriminator)
    head = rtd_head_tf1_names(model)
    if discriminator.has(head):
        discriminator.load(head)
    else:
        notes.append(f"{discriminator.where}: no discriminator_predictions head; it starts from random weights")
    generator.load(generator_tf1_names(model), base=generator.base)
    shared = generator._read([hf_key("electra/embeddings/word_embeddings", generator.base)])
    ours = model.embeddings.token.embeddings.numpy()
    if not np.array_equal(next(iter(shared.values())), ours):
        notes.append(f"{generator.where}: its token embeddings differ from the discriminator's; the pretrainer "
                     "shares one table and keeps the discriminator's")
    return notes


def pretrainer_config(discriminator: HfCheckpoint, generator: HfCheckpoint) -> ModelConfig:
    """The pretrainer's settings for a discriminator + generator pair: the generator's size as fractions of the
    discriminator's, which must give its heads and feed-forward width the way google-research/electra does."""
    d, g = discriminator.model, generator.model
    for key in ("vocab_size", "embedding_size", "max_position_embeddings", "type_vocab_size", "hidden_act"):
        if getattr(g, key) != getattr(d, key):
            raise InputError(f"{generator.where}/{CONFIG_FILE}: {key} {getattr(g, key)!r}, the discriminator's is "
                             f"{getattr(d, key)!r}; a pair shares its embeddings")
    config = dataclasses.replace(d, generator_hidden_fraction=g.hidden_size / d.hidden_size,
                                 generator_layers_fraction=g.num_hidden_layers / d.num_hidden_layers)
    derived, actual = EncoderSize.generator(config), EncoderSize.discriminator(g)
    for field in ("num_heads", "intermediate_size"):
        if getattr(derived, field) != getattr(actual, field):
            raise InputError(f"{generator.where}/{CONFIG_FILE}: {field} {getattr(actual, field)}; a generator "
                             f"{actual.hidden_size} wide has {getattr(derived, field)} here (64-wide heads, 4x "
                             "feed-forward, as google-research/electra's)")
    return config
