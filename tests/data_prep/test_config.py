import pytest

from data_prep.config import load_config
from data_prep.errors import InputError
from tests.conftest import REPO


@pytest.mark.parametrize("size", ["debug", "small", "base", "large"])
def test_every_shipped_config_loads(size):
    config = load_config(str(REPO / "configs" / f"{size}.yaml"))
    assert config.model.hidden_size % config.model.num_attention_heads == 0


@pytest.mark.parametrize("size, hidden, layers, embedding, generator, mask_prob, seq", [
    ("small", 256, 12, 128, 0.25, 0.15, 128),
    ("base", 768, 12, 768, 0.333333, 0.15, 512),
    ("large", 1024, 24, 1024, 0.25, 0.25, 512),
])
def test_sizes_follow_the_electra_paper(size, hidden, layers, embedding, generator, mask_prob, seq):
    config = load_config(str(REPO / "configs" / f"{size}.yaml"))
    assert (config.model.hidden_size, config.model.num_hidden_layers, config.model.embedding_size) == \
        (hidden, layers, embedding)
    assert config.model.generator_hidden_fraction == generator
    assert config.pretrain.mask_prob == mask_prob
    assert config.pretraining_data.max_seq_length == seq
    assert config.pretrain.max_predictions_per_seq == int((mask_prob + 0.005) * seq)


def test_overrides_are_typed():
    config = load_config(str(REPO / "configs" / "debug.yaml"), ["pretrain.learning_rate=1e-4", "model.hidden_size=32"])
    assert config.pretrain.learning_rate == 1e-4 and config.model.hidden_size == 32


@pytest.mark.parametrize("overrides, message", [
    (["pretrain.learnig_rate=1"], "--set 'pretrain.learnig_rate=1': unknown key(s) learnig_rate"),
    (["model.hidden_size=big"], "expected int, got 'big'"),
    (["model.hidden_size=true"], "expected int, got True"),
    (["nosection=1"], "expected section.key=value"),
    (["nosection.key=1"], "--set 'nosection.key=1': unknown section 'nosection'"),
    (["corpus.num_shards=0"], "--set 'corpus.num_shards=0': CorpusConfig.num_shards: must be at least 1, got 0"),
    (["pretrain.log_every_steps=0"], "PretrainConfig.log_every_steps: must be at least 1, got 0"),
    (["pretrain.mixed_precision=fp16"], "PretrainConfig.mixed_precision: expected one of auto, float32"),
    (["finetune.jit_compile=maybe"], "FinetuneConfig.jit_compile: expected one of auto, true, false, got 'maybe'"),
])
def test_bad_overrides_name_the_key(overrides, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(str(REPO / "configs" / "debug.yaml"), overrides)


def test_bad_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("model:\n  hidden_size: [1,\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"broken.yaml:\d+: not valid YAML"):
        load_config(str(path))


def test_flags_are_named_in_their_errors_and_win_over_set():
    config = load_config(None, ["corpus.num_shards=3"], {"corpus.num_shards": ("--num-shards", 5)})
    assert config.corpus.num_shards == 5
    with pytest.raises(InputError, match="--num-shards: CorpusConfig.num_shards: must be at least 1, got -1"):
        load_config(None, [], {"corpus.num_shards": ("--num-shards", -1)})


def test_set_stands_in_for_a_bad_value_in_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("pretrain:\n  learning_rate: fast\n  batch_size: 0\n", encoding="utf-8")
    with pytest.raises(InputError, match="c.yaml: pretrain: PretrainConfig.learning_rate: expected float, got 'fast'"):
        load_config(str(path), ["pretrain.batch_size=8"])
    config = load_config(str(path), ["pretrain.learning_rate=1e-4", "pretrain.batch_size=0", "pretrain.batch_size=8"])
    assert config.pretrain.learning_rate == 1e-4 and config.pretrain.batch_size == 8
    config = load_config(str(path), ["pretrain.learning_rate=2e-4"], {"pretrain.batch_size": ("--batch-size", 4)})
    assert config.pretrain.batch_size == 4


def test_yaml_booleans_and_empty_sections(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("pretrain:\n  jit_compile: true\nfinetune:\n", encoding="utf-8")
    config = load_config(str(path), ["finetune.seed=7"])
    assert config.pretrain.jit_compile == "true" and config.finetune.seed == 7
    path.write_text("corpus:\n  num_shards: 0\n", encoding="utf-8")
    with pytest.raises(InputError, match="c.yaml: corpus: CorpusConfig.num_shards: must be at least 1"):
        load_config(str(path))
