"""The one typed config tree every stage reads, loaded from YAML with command-line overrides.

It lives in data_prep because that is the stage every other stage may import; each stage reads only
its own section. Unknown keys and wrong types are errors naming the file and key, so a typo in a
TPU run's YAML fails before the TPU is touched.

Example:
    config = load_config("configs/debug.yaml", overrides=["pretrain.learning_rate=1e-4"])
    config.model.hidden_size
"""

import dataclasses
import types
import typing
from dataclasses import dataclass, field

import yaml
from tensorflow.io import gfile

from data_prep.errors import InputError

JIT_COMPILE_CHOICES = ("auto", "true", "false")
PRECISION_CHOICES = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
# transformers' names: "gelu_new" is the tanh approximation google-research/electra computes, "gelu" the exact GELU
# transformers computes for the BERTs whose config.json names it (cl-tohoku's among them).
ACTIVATION_CHOICES = ("gelu_new", "gelu")


def _at_least(config, minimum, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if value < minimum:
            raise InputError(f"{type(config).__name__}.{name}: must be at least {minimum}, got {value}")


def _one_of(config, choices: tuple[str, ...], *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if value not in choices:
            raise InputError(f"{type(config).__name__}.{name}: expected one of {', '.join(choices)}, got {value!r}")


@dataclass(frozen=True)
class CorpusConfig:
    """Cleaning and sentence splitting (`electra-ja corpus`)."""

    min_sentence_chars: int = 10
    max_sentence_chars: int = 200
    # A text file without blank lines is one document; cutting it lets its text spread over many shards.
    max_document_sentences: int = 500
    num_shards: int = 8
    # Wikipedia's lists and headings lack a final 。; one-sentence-a-line text such as GSD's often does too.
    require_final_period: bool = True

    def __post_init__(self):
        _at_least(self, 1, "max_sentence_chars", "max_document_sentences", "num_shards")


@dataclass(frozen=True)
class VocabConfig:
    """WordPiece vocabulary training (`electra-ja vocab`)."""

    vocab_size: int = 32000
    min_frequency: int = 2
    # Japanese needs thousands of single characters in the alphabet, not the 1000 a Latin script does.
    limit_alphabet: int = 6000

    def __post_init__(self):
        _at_least(self, 1, "vocab_size", "min_frequency", "limit_alphabet")


@dataclass(frozen=True)
class PretrainingDataConfig:
    """Packing sentences into pretraining TFRecords (`electra-ja pretraining-data`)."""

    max_seq_length: int = 128
    num_shards: int = 16
    num_processes: int = 1
    seed: int = 12345

    def __post_init__(self):
        _at_least(self, 5, "max_seq_length")  # [CLS] A [SEP] B [SEP]
        _at_least(self, 1, "num_shards", "num_processes")


@dataclass(frozen=True)
class NerDataConfig:
    """GSD-NE to token-classification TFRecords (`electra-ja ner-data`)."""

    max_seq_length: int = 128

    def __post_init__(self):
        _at_least(self, 3, "max_seq_length")  # [CLS] word [SEP]


@dataclass(frozen=True)
class ClsDataConfig:
    """Labeled texts to sequence-classification TFRecords (`electra-ja cls-data`)."""

    max_seq_length: int = 128

    def __post_init__(self):
        _at_least(self, 3, "max_seq_length")  # [CLS] word [SEP]


@dataclass(frozen=True)
class ModelConfig:
    """Encoder sizes (ELECTRA paper, Table 6); the generator is scaled from the discriminator."""

    vocab_size: int = 32000
    embedding_size: int = 128
    hidden_size: int = 256
    num_hidden_layers: int = 12
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    generator_hidden_fraction: float = 0.25
    generator_layers_fraction: float = 1.0
    # Also the attention-probability dropout: keras-hub's TransformerEncoder has one rate (electra uses 0.1 for both).
    hidden_dropout: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_act: str = "gelu_new"

    def __post_init__(self):
        _at_least(self, 1, "vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                  "intermediate_size", "max_position_embeddings", "type_vocab_size")
        _one_of(self, ACTIVATION_CHOICES, "hidden_act")


@dataclass(frozen=True)
class PretrainConfig:
    """Replaced-token-detection pretraining hyperparameters (ELECTRA paper, Table 6)."""

    batch_size: int = 128
    num_train_steps: int = 1_000_000
    learning_rate: float = 5e-4
    # The generator's encoder and MLM head learn at this multiple of learning_rate (the shared embeddings do not).
    generator_learning_rate_scale: float = 1.0
    warmup_steps: int = 10_000
    weight_decay: float = 0.01
    adam_epsilon: float = 1e-6
    clip_norm: float = 1.0
    mask_prob: float = 0.15
    max_predictions_per_seq: int = 20
    disc_weight: float = 50.0
    temperature: float = 1.0
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 5  # the last K checkpoints (and encoders, which fine-tuning reads) kept
    # Also keep the encoder of every step divisible by this (0: none), for select-checkpoint to compare.
    keep_encoder_every_steps: int = 0
    steps_per_execution: int = 1
    log_every_steps: int = 50
    # "auto": XLA on TPUs and GPUs; not on CPUs, where XLA's random numbers for dropout make a step ~8x slower.
    jit_compile: str = "auto"
    # "auto": bfloat16 compute on TPUs and GPUs, float32 on CPUs.
    mixed_precision: str = "auto"
    seed: int = 12345

    def __post_init__(self):
        _at_least(self, 1, "batch_size", "num_train_steps", "max_predictions_per_seq", "save_checkpoints_steps",
                  "keep_checkpoint_max", "steps_per_execution", "log_every_steps")
        _at_least(self, 0, "warmup_steps", "keep_encoder_every_steps", "generator_learning_rate_scale")
        _one_of(self, JIT_COMPILE_CHOICES, "jit_compile")
        _one_of(self, PRECISION_CHOICES, "mixed_precision")


@dataclass(frozen=True)
class FinetuneConfig:
    """NER fine-tuning hyperparameters (ELECTRA paper, Table 7)."""

    batch_size: int = 32
    num_epochs: int = 3
    learning_rate: float = 3e-4
    layerwise_lr_decay: float = 0.8
    warmup_proportion: float = 0.1
    weight_decay: float = 0.01
    adam_epsilon: float = 1e-6
    dropout: float = 0.1
    # Encoder layers from the top that start from fresh weights instead of the loaded ones (Zhang et al. 2021,
    # "Revisiting Few-sample BERT Fine-tuning"): for pretrained top layers whose token states have collapsed
    # (benchmarks/encoder_collapse.py).
    reinit_top_layers: int = 0
    # A labelled-data budget: learn from this many training windows (one random subset, the same for every trial and
    # initialisation), not all; 0 = all. Pretraining should pay most where labels are few.
    max_train_examples: int = 0
    # As PretrainConfig's: "auto" = XLA and bfloat16 on TPUs/GPUs, neither on CPUs.
    jit_compile: str = "auto"
    mixed_precision: str = "auto"
    seed: int = 12345

    def __post_init__(self):
        _at_least(self, 1, "batch_size", "num_epochs")
        _at_least(self, 0, "reinit_top_layers", "max_train_examples")
        _one_of(self, JIT_COMPILE_CHOICES, "jit_compile")
        _one_of(self, PRECISION_CHOICES, "mixed_precision")


@dataclass(frozen=True)
class Config:
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    vocab: VocabConfig = field(default_factory=VocabConfig)
    pretraining_data: PretrainingDataConfig = field(default_factory=PretrainingDataConfig)
    ner_data: NerDataConfig = field(default_factory=NerDataConfig)
    cls_data: ClsDataConfig = field(default_factory=ClsDataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)


def load_config(path: str | None, overrides: typing.Sequence[str] = (),
                flags: dict[str, tuple[str, object]] | None = None) -> Config:
    """Reads `path` (YAML, any gfile path; None means all defaults), then applies `section.key=value` overrides
    (--set), then `flags`: {"section.key": (flag name, value)}. Errors name the file, --set or flag at fault."""
    given = [(*_parse_override(override), f"--set {override!r}") for override in overrides]
    given += [(key, value, flag) for key, (flag, value) in (flags or {}).items()]
    winners = {key: (value, where) for key, value, where in given}  # the last source of a key wins
    tree = _read_yaml(path) if path else {}
    for key in winners:  # and only it is read: --set can stand in for a bad value in the file
        section, _, name = key.partition(".")
        if isinstance(tree.get(section), dict):
            tree[section].pop(name, None)
    config = from_dict(Config, tree, where=path or "defaults")
    for key, (value, where) in winners.items():
        config = _replace(config, key, value, where)
    return config


def _replace(config: Config, key: str, value, where: str) -> Config:
    section_name, _, name = key.partition(".")
    sections = [f.name for f in dataclasses.fields(Config)]
    if section_name not in sections:
        raise InputError(f"{where}: unknown section {section_name!r} (known: {', '.join(sections)})")
    section = getattr(config, section_name)
    tree = {**{f.name: getattr(section, f.name) for f in dataclasses.fields(section)}, name: value}
    return dataclasses.replace(config, **{section_name: from_dict(type(section), tree, where)})


def _read_yaml(path: str) -> dict:
    if not gfile.exists(path):
        raise InputError(f"{path}: config file not found")
    try:
        with gfile.GFile(path, "r") as f:
            tree = yaml.safe_load(f) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise InputError(f"{path}{line}: not valid YAML ({getattr(error, 'problem', error)})") from None
    if not isinstance(tree, dict):
        raise InputError(f"{path}: expected a mapping of sections at the top level")
    return tree


def _parse_override(override: str) -> tuple[str, object]:
    key, sep, raw = override.partition("=")
    if not sep or key.count(".") != 1:
        raise InputError(f"--set {override!r}: expected section.key=value, e.g. pretrain.learning_rate=1e-4")
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError:
        raise InputError(f"--set {override!r}: the value is not a YAML scalar") from None


def from_dict(cls, tree, where: str):
    """A config dataclass from a mapping (YAML or JSON); errors name `where` and the key."""
    if tree is None:  # an empty YAML section
        tree = {}
    if not isinstance(tree, dict):
        raise InputError(f"{where}: expected a mapping for {cls.__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(tree) - set(fields))
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(fields)})")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in tree.items():
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            values[name] = from_dict(kind, value, where=f"{where}: {name}")
        else:
            values[name] = _coerce(value, kind, where=f"{where}: {cls.__name__}.{name}")
    try:
        return cls(**values)
    except InputError as error:
        raise InputError(f"{where}: {error}") from None


def _coerce(value, kind, where: str):
    if isinstance(kind, types.UnionType):
        kinds = typing.get_args(kind)
        if value is None and type(None) in kinds:
            return None
        kind = next(k for k in kinds if k is not type(None))
    if kind is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            return float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
        except ValueError:
            pass
    if kind is str and isinstance(value, bool):
        return str(value).lower()  # YAML reads an unquoted true/false as a boolean
    bool_for_number = isinstance(value, bool) and kind is not bool
    if bool_for_number or not isinstance(value, kind):
        raise InputError(f"{where}: expected {kind.__name__}, got {value!r}")
    return value
