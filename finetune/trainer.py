"""`electra-ja finetune`: trains the NER tagger or the sentence classifier (finetune/tasks.py: whichever the data dir
was built for), picks the best epoch on dev (never on test), evaluates it on dev and test, repeats for `--trials`
seeds and writes the fine-tuned dir.

Training follows google-research/electra's fine-tuning: AdamW with layer-wise learning-rate decay, linear
warm-up over `warmup_proportion` of the steps then linear decay, global-norm clipping at 1.0, loss summed over a
sentence's words and averaged over sentences. Keras `fit` runs it under the chosen strategy, with progress
bars and TensorBoard (`OUT/tensorboard/trial-K`; dev scores per epoch under `.../dev`).

Fine-tuned dir: `checkpoint/` (the trial with the best dev F1), `model_config.json`, `labels.json`,
`tokenizer/`, and `results.json` written last, so its presence means the run finished.

Example:
    results = finetune(config, "build/demo/ner", "build/demo/pretrain", "build/demo/finetuned", trials=3)
    results["summary"]["test"]["f1"]        # {"mean": ..., "std": ...}
"""

import dataclasses
import posixpath
import statistics

import keras
import tensorflow as tf
from tensorflow.io import gfile

from data_prep import storage
from data_prep.config import Config, ModelConfig
from data_prep.errors import InputError
from data_prep.tokenizer import JapaneseTokenizer
from finetune.data import NerData, read_labels
from finetune.model import EncoderWithHead, TokenTagger
from finetune.tasks import task_of, task_of_data, task_of_model
from finetune.optimizer import LayerwiseAdamW
from pretrain.hf_checkpoint import HfCheckpoint
from pretrain.optimizer import WarmupLinearDecay
from pretrain.strategy import compute_dtype_policy, global_dtype_policy, make_strategy, use_xla
from pretrain.tf1_checkpoint import discriminator_tf1_names, load_tf1_variables, open_checkpoint
from pretrain.model_dir import ENCODER_DIR, SELECTION, read_model_config
from pretrain.weights import layer_checkpoint

CHECKPOINT_DIR = "checkpoint"
CLIP_NORM = 1.0


@dataclasses.dataclass(frozen=True)
class Initialization:
    """Where the encoder's first weights come from: a pretrain model dir (its encoder chosen by select-checkpoint,
    else the latest) or one of its encoder checkpoints, a transformers dir, a TF1 checkpoint, or nowhere."""

    kind: str  # "pretrained" | "hf" | "tf1" | "random"
    path: str | None
    model: ModelConfig
    vocab_hash: str | None = None  # of a pretrain dir's tokenizer/; random and TF1 encoders bring none
    checkpoint: str | None = None  # the pretrain dir's encoder checkpoint that is loaded

    @classmethod
    def resolve(cls, init: str, config: Config, data: NerData, tokenizer: JapaneseTokenizer) -> "Initialization":
        if init == "random":
            found = cls("random", None, dataclasses.replace(config.model, vocab_size=tokenizer.vocab_size))
        elif gfile.exists(storage.join(init, "model_config.json")):
            found = cls._pretrained(init, cls._chosen_encoder(init))
        elif _is_encoder_checkpoint(init):
            found = cls._pretrained(posixpath.dirname(posixpath.dirname(init.rstrip("/"))), init)
        elif HfCheckpoint.is_hf_dir(init):
            checkpoint = HfCheckpoint.open(init)
            vocab_hash = JapaneseTokenizer.load(init, "--init-checkpoint").vocab_hash()
            found = cls("hf", init, checkpoint.model, vocab_hash)
            shapes = TokenTagger(checkpoint.model, 1)
            shapes.build_variables()
            checkpoint.check_encoder(shapes.embeddings, shapes.encoder)  # before anything is written
        else:
            open_checkpoint(init)
            found = cls("tf1", init, dataclasses.replace(config.model, vocab_size=tokenizer.vocab_size))
        data.check_fits(found.where, found.model, found.vocab_hash)
        return found

    @classmethod
    def _pretrained(cls, model_dir: str, checkpoint: str) -> "Initialization":
        flag = "--init-checkpoint"
        _, model = read_model_config(model_dir, flag)
        vocab_hash = JapaneseTokenizer.load(storage.join(model_dir, "tokenizer"), flag).vocab_hash()
        return cls("pretrained", model_dir, model, vocab_hash, checkpoint)

    @staticmethod
    def _chosen_encoder(model_dir: str) -> str:
        """The encoder select-checkpoint marked in `model_dir`, else its latest one."""
        flag, selection_path = "--init-checkpoint", storage.join(model_dir, SELECTION)
        if gfile.exists(selection_path):
            chosen = storage.read_json(selection_path, flag).get("selected", {}).get("checkpoint")
            if not isinstance(chosen, str) or not gfile.exists(f"{chosen}.index"):
                raise InputError(f"{flag} {selection_path}: selects {chosen!r}, which is not a kept encoder "
                                 "checkpoint (pruned by a resumed pretraining?); rerun select-checkpoint or remove "
                                 f"{SELECTION} to start from the latest")
            print(f"finetune: starting from {chosen}, chosen by select-checkpoint ({SELECTION})", flush=True)
            return chosen
        latest = tf.train.latest_checkpoint(storage.join(model_dir, ENCODER_DIR))
        if latest is None:
            raise InputError(f"{flag} {model_dir}: no {ENCODER_DIR}/ checkpoint yet (pretraining writes one at every "
                             "save_checkpoints_steps)")
        return latest

    @property
    def where(self) -> str:
        """Where the encoder's sizes come from, for error messages: a pretrain dir has its own, others --config's."""
        return f"--init-checkpoint {self.path}" if self.kind in ("pretrained", "hf") else "--config's model section"

    def load_into(self, tagger: EncoderWithHead, reinit_top_layers: int = 0) -> None:
        """The encoder's weights from `path`, but for the top `reinit_top_layers` blocks, which keep the fresh
        weights the tagger was built with."""
        if reinit_top_layers > len(tagger.encoder.blocks):
            raise InputError(f"finetune.reinit_top_layers {reinit_top_layers}: the encoder has "
                             f"{len(tagger.encoder.blocks)} layers")
        top = tagger.encoder.blocks[len(tagger.encoder.blocks) - reinit_top_layers:]
        fresh = [[v.numpy() for v in block.weights] for block in top]
        self._load(tagger)
        for block, values in zip(top, fresh):
            for variable, value in zip(block.weights, values):
                variable.assign(value)

    def _load(self, tagger: EncoderWithHead) -> None:
        if self.kind == "pretrained":
            restore_weights(layer_checkpoint(embeddings=tagger.embeddings, encoder=tagger.encoder),
                            self.checkpoint, self.where)
        elif self.kind == "hf":
            HfCheckpoint.open(self.path).load_encoder(tagger.embeddings, tagger.encoder)
        elif self.kind == "tf1":
            load_tf1_variables(discriminator_tf1_names(tagger.embeddings, tagger.encoder), self.path)


def restore_weights(checkpoint: tf.train.Checkpoint, path: str, where: str) -> None:
    """Restores checkpoint `path`, or the latest checkpoint in the directory `path`, into every variable of
    `checkpoint`."""
    latest = path if gfile.exists(f"{path}.index") else tf.train.latest_checkpoint(path)
    if latest is None:
        raise InputError(f"{where}: no checkpoint in {path}")
    mismatch = _restore(checkpoint, latest)
    # TF warns about a half-done restore once it is freed: free it now, so the warnings precede the error line.
    del checkpoint
    if mismatch:
        raise InputError(f"{where}: {latest} was saved from a model of other sizes ({mismatch})")


def _restore(checkpoint: tf.train.Checkpoint, path: str) -> str | None:
    """Restores `path`; returns what did not fit, or None (returned, not raised, as a raised error's traceback
    would keep the half-done restore alive)."""
    try:
        status = checkpoint.restore(path)
    except ValueError as error:  # a weight of another shape
        return str(error).split(". ")[0].rstrip(".")
    try:
        status.assert_consumed()
    except AssertionError:
        status.expect_partial()  # the caller's error says it once; TF would warn once per weight left over
        return "its layers differ"
    return None


def _is_encoder_checkpoint(path: str) -> bool:
    """A pretrain dir's `encoder/ckpt-N` (a TF1 checkpoint prefix also has an .index, but no such parents)."""
    parent = posixpath.dirname(path.rstrip("/"))
    return (gfile.exists(f"{path}.index") and posixpath.basename(parent) == ENCODER_DIR
            and gfile.exists(storage.join(posixpath.dirname(parent), "model_config.json")))


def weights_checkpoint(tagger: EncoderWithHead) -> tf.train.Checkpoint:
    """The tagger's weights without optimizer state: what the fine-tuned dir keeps and export reads."""
    return layer_checkpoint(embeddings=tagger.embeddings, encoder=tagger.encoder, classifier=tagger.classifier)


class BestOnDev(keras.callbacks.Callback):
    """Scores dev after every epoch, logs it, and keeps the weights of the best epoch (by char-span F1)."""

    def __init__(self, data: NerData, log_dir: str, batch_size: int, fixed_length: bool = False):
        super().__init__()
        self.data, self.batch_size, self.fixed_length, self.task = data, batch_size, fixed_length, task_of(data)
        self.writer = tf.summary.create_file_writer(storage.join(log_dir, "dev"))
        self.epoch, self.scores, self.weights = None, None, None

    def on_epoch_end(self, epoch, logs=None):
        scores = self.task.evaluate(self.model, self.data, "dev", self.batch_size, self.fixed_length)
        # Keras' TensorBoard callback leaves its every-`update_freq`-batches record_if active during training,
        # which would silently drop these epoch summaries.
        with self.writer.as_default(step=epoch + 1), tf.summary.record_if(True):
            for tag, value in self.task.dev_scalars(scores).items():
                tf.summary.scalar(tag, value)
        self.writer.flush()
        print(f"epoch {epoch + 1}: " + self.task.format_scores("dev", scores), flush=True)
        if self.scores is None or scores[self.task.metric] > self.scores[self.task.metric]:
            self.epoch, self.scores, self.weights = epoch + 1, scores, self.model.get_weights()

    def on_train_end(self, logs=None):
        self.writer.close()


def steps_per_epoch(config: Config, data: NerData) -> int:
    examples = data.examples("train", config.finetune.max_train_examples)
    steps = examples // config.finetune.batch_size
    if steps == 0:
        raise InputError(f"--data: {examples} training examples, fewer than one batch of "
                         f"{config.finetune.batch_size}")
    return steps


def compiled_tagger(config: Config, data: NerData, init: Initialization, strategy: tf.distribute.Strategy,
                    total_steps: int, model_class: type[EncoderWithHead] | None = None) -> EncoderWithHead:
    """The task's model (or `model_class`, a variant of it that a benchmark tries) with its first weights, compiled
    with google-research/electra's fine-tuning optimizer: AdamW, layer-wise decay, warm-up then linear decay over
    `total_steps`, clipping."""
    settings = config.finetune
    if settings.batch_size % strategy.num_replicas_in_sync:
        raise InputError(f"finetune.batch_size {settings.batch_size} is not divisible by "
                         f"{strategy.num_replicas_in_sync} replicas")
    with strategy.scope(), global_dtype_policy(compute_dtype_policy(settings.mixed_precision, strategy)):
        task = task_of(data)
        tagger = (model_class or task.model)(init.model, len(data.labels), settings.dropout)
        tagger.build_variables(data.max_seq_length)
        init.load_into(tagger, settings.reinit_top_layers)
        schedule = WarmupLinearDecay(settings.learning_rate, int(settings.warmup_proportion * total_steps),
                                     total_steps)
        optimizer = LayerwiseAdamW(tagger.layer_depths(), settings.layerwise_lr_decay, learning_rate=schedule,
                                   weight_decay=settings.weight_decay, epsilon=settings.adam_epsilon,
                                   global_clipnorm=CLIP_NORM)
        tagger.compile(optimizer=optimizer, loss=task.loss, jit_compile=use_xla(settings.jit_compile, strategy))
    return tagger


def train_trial(config: Config, data: NerData, init: Initialization, strategy: tf.distribute.Strategy, seed: int,
                log_dir: str, model_class: type[EncoderWithHead] | None = None) -> tuple[EncoderWithHead, dict]:
    """One fine-tuning run (of the task's model or `model_class`): returns the tagger at its best dev epoch and that
    trial's dev and test scores."""
    settings = config.finetune
    keras.utils.set_random_seed(seed)
    steps = steps_per_epoch(config, data)
    tagger = compiled_tagger(config, data, init, strategy, steps * settings.num_epochs, model_class)
    fixed_length = isinstance(strategy, tf.distribute.TPUStrategy)  # one compiled shape; other devices pad less
    best = BestOnDev(data, log_dir, settings.batch_size, fixed_length)
    train = data.dataset("train", settings.batch_size, training=True, seed=seed, fixed_length=fixed_length,
                         max_examples=settings.max_train_examples)
    tagger.fit(train, epochs=settings.num_epochs, steps_per_epoch=steps, shuffle=False,
               callbacks=[keras.callbacks.TensorBoard(log_dir, update_freq=50), best], verbose=1)
    tagger.set_weights(best.weights)
    test = task_of(data).evaluate(tagger, data, "test", settings.batch_size, fixed_length)
    return tagger, {"seed": seed, "best_epoch": best.epoch, "dev": best.scores, "test": test}


def finetune(config: Config, data_dir: str, init: str, out_dir: str, trials: int = 1, strategy_name: str = "cpu",
             tpu: str | None = None) -> dict:
    if trials < 1:
        raise InputError(f"--trials {trials}: expected at least 1")
    task = task_of_data(data_dir)
    data = task.load_data(data_dir)
    tokenizer = JapaneseTokenizer.load(data.tokenizer_dir, "--data")
    initialization = Initialization.resolve(init, config, data, tokenizer)
    storage.make_output_dir(out_dir, "--out")
    results_path = storage.join(out_dir, "results.json")
    if gfile.exists(results_path):
        gfile.remove(results_path)  # the old run's marker must not vouch for the new run's checkpoint
    strategy = make_strategy(strategy_name, tpu)
    runs = []
    for trial in range(trials):
        seed = config.finetune.seed + trial
        print(f"\nfinetune: trial {trial + 1}/{trials} (seed {seed}, init {initialization.kind}, "
              f"{data.examples('train', config.finetune.max_train_examples)} of {data.examples('train')} training "
              "examples)", flush=True)
        tagger, run = train_trial(config, data, initialization, strategy, seed,
                                  storage.join(out_dir, "tensorboard", f"trial-{trial + 1}"))
        print(task.format_scores("dev", run["dev"]) + "\n" + task.format_scores("test", run["test"]), flush=True)
        if not runs or run["dev"][task.metric] > max(r["dev"][task.metric] for r in runs):
            tf.train.CheckpointManager(weights_checkpoint(tagger), storage.join(out_dir, CHECKPOINT_DIR),
                                       max_to_keep=1).save(checkpoint_number=trial + 1)
        runs.append(run)
    selected = max(range(trials), key=lambda i: runs[i]["dev"][task.metric])
    _write_model_files(out_dir, config, data, initialization, tokenizer)
    results = {
        "init": {"kind": initialization.kind, "path": initialization.path, "checkpoint": initialization.checkpoint},
        "data": data_dir,
        "finetune": dataclasses.asdict(config.finetune),
        "selected_trial": selected + 1,
        "dev": runs[selected]["dev"],
        "test": runs[selected]["test"],
        "task": task.name,
        "decoding": task.decoding,
        "summary": {split: _mean_std(runs, split, task.summary_metrics) for split in ("dev", "test")},
        "trials": runs,
    }
    storage.write_json(results_path, results)
    return results


def _mean_std(runs: list[dict], split: str, metrics: tuple[str, ...]) -> dict:
    """Mean and sample standard deviation (0 for one trial) of each metric over trials."""
    summary = {}
    for name in metrics:
        values = [run[split][name] for run in runs]
        summary[name] = {"mean": statistics.fmean(values),
                         "std": statistics.stdev(values) if len(values) > 1 else 0.0}
    return summary


def _write_model_files(out_dir: str, config: Config, data: NerData, init: Initialization,
                       tokenizer: JapaneseTokenizer) -> None:
    task = task_of(data)
    storage.write_json(storage.join(out_dir, "model_config.json"), {
        "task": task.name,
        "model": dataclasses.asdict(init.model),
        "num_labels": len(data.labels),
        "max_seq_length": data.max_seq_length,
        "finetune": dataclasses.asdict(config.finetune),
        "init": {"kind": init.kind, "path": init.path},
    })
    storage.write_json(storage.join(out_dir, "labels.json"), task.labels_file(data.labels))
    tokenizer.save(storage.join(out_dir, "tokenizer"))


def load_finetuned(model_dir: str, flag: str = "--model") -> tuple[EncoderWithHead, dict, list[str]]:
    """The model (tagger or classifier) of a finished fine-tuned dir with its model_config.json and label names."""
    if not gfile.exists(storage.join(model_dir, "results.json")):
        raise InputError(f"{flag} {model_dir}: not a finished fine-tuned dir (no results.json; did finetune "
                         "complete?)")
    description, model = read_model_config(model_dir, flag)
    length = description.get("max_seq_length")
    if type(length) is not int or length < 1:
        raise InputError(f"{flag} {model_dir}/model_config.json: max_seq_length {length!r}, expected a positive "
                         "integer (the window length the tagger was fine-tuned with)")
    labels = read_labels(storage.join(model_dir, "labels.json"), flag)
    tagger = task_of_model(description, f"{flag} {model_dir}/model_config.json").model(model, len(labels))
    tagger.build_variables()
    restore_weights(weights_checkpoint(tagger), storage.join(model_dir, CHECKPOINT_DIR), f"{flag} {model_dir}")
    return tagger, description, labels
