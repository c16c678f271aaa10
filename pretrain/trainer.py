"""`electra-ja pretrain`: the training loop around ElectraPretrainer.

AdamW (no decay on LayerNorm and biases), linear warmup then linear decay, global-norm clipping; tf.data over
the TFRecord shards; an XLA-compiled step run `steps_per_execution` times per call; CheckpointManager to a
local dir or gs:// every N steps, resumed after a crash with step, optimizer slots and schedule intact;
TensorBoard scalars; `model_config.json`, the tokenizer and the discriminator's encoder in the model dir.

Example:
    train(config, data_dir="build/demo/pretrain_data", model_dir="build/demo/pretrain", strategy_name="cpu")
"""

import contextlib
import dataclasses
import time

import keras
import tensorflow as tf
from tensorflow.io import gfile
from tqdm import tqdm

from data_prep import storage
from data_prep.config import Config
from data_prep.errors import InputError
from data_prep.tokenizer import CLS, MASK, PAD, SEP, JapaneseTokenizer
from pretrain.hf_checkpoint import HfCheckpoint, load_hf_pair, pretrainer_config
from pretrain.model import ElectraPretrainer, SpecialIds
from pretrain.model_dir import CHECKPOINTS_DIR, ENCODER_DIR, MODEL_CONFIG, checkpoint_step, encoder_checkpoints
from pretrain.optimizer import make_optimizer
from pretrain.strategy import compute_dtype_policy, global_dtype_policy, make_strategy, use_xla
from pretrain.weights import layer_checkpoint

def read_dataset_description(data_dir: str) -> dict:
    description = storage.read_json(storage.join(data_dir, "dataset.json"), "--data")
    if not description.get("complete"):
        raise InputError(f"--data {data_dir}: pretraining-data did not finish there (dataset.json says incomplete); "
                         "rerun `electra-ja pretraining-data` with the same --out to complete it")
    return description


def pretraining_dataset(data_dir: str, description: dict, batch_size: int, seed: int,
                        context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """Shuffled, repeated batches of fixed shape; every example carries an id that seeds its masking."""
    length = description["max_seq_length"]
    files = [storage.join(data_dir, shard["path"]) for shard in description["shards"] if shard["examples"]]
    pipelines, pipeline = (context.num_input_pipelines, context.input_pipeline_id) if context else (1, 0)
    spec = {name: tf.io.FixedLenFeature([length], tf.int64) for name in ("input_ids", "input_mask", "segment_ids")}

    def parse(index, record):
        example = {k: tf.cast(v, tf.int32) for k, v in tf.io.parse_single_example(record, spec).items()}
        example["example_ids"] = tf.cast((index * pipelines + pipeline) % (2 ** 31 - 1), tf.int32)
        return example

    dataset = tf.data.Dataset.from_tensor_slices(files)
    if pipelines > 1:
        dataset = dataset.shard(pipelines, pipeline)
    dataset = dataset.shuffle(len(files), seed=seed).repeat()
    dataset = dataset.interleave(tf.data.TFRecordDataset, cycle_length=min(8, len(files)),
                                 num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.shuffle(10_000, seed=seed).enumerate().map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def special_ids(tokenizer: JapaneseTokenizer) -> SpecialIds:
    return SpecialIds(pad=tokenizer.id_of(PAD), cls=tokenizer.id_of(CLS), sep=tokenizer.id_of(SEP),
                      mask=tokenizer.id_of(MASK))


class Pretraining:
    """Model, optimizer and compiled step under one strategy; `step(batch)` is what tests drive directly."""

    def __init__(self, config: Config, specials: SpecialIds, strategy: tf.distribute.Strategy):
        self.config, self.strategy = config, strategy
        keras.utils.set_random_seed(config.pretrain.seed)  # initial weights, masking, sampling and dropout
        with strategy.scope(), global_dtype_policy(compute_dtype_policy(config.pretrain.mixed_precision, strategy)):
            self.model = ElectraPretrainer.from_config_tree(config.model, config.pretrain, specials)
            self.optimizer = make_optimizer(config.pretrain)
        self.jit_compile = use_xla(config.pretrain.jit_compile, strategy)
        self._compiled = tf.function(self._replica_step, jit_compile=self.jit_compile)
        self._loop = tf.function(self._steps)
        self._one_step = tf.function(self._reduced_step)

    def _replica_step(self, batch):
        replica = tf.distribute.get_replica_context()
        with tf.GradientTape() as tape:
            outputs = self.model(batch, training=True)
            # Normalised by the global batch's counts, so the replicas' summed gradients are those of the global
            # mean loss however the batch is split (a mean of per-replica means would not be).
            mlm_count = replica.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(outputs["mlm_weights"]))
            token_count = replica.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(outputs["token_weights"]))
            loss = self.model.objective(outputs["mlm_loss_sum"], mlm_count, outputs["rtd_loss_sum"], token_count)
        variables = self.model.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {**_sums(outputs), "loss": loss}

    def _steps(self, iterator, steps):
        sums = self.strategy.run(self._compiled, args=(next(iterator),))
        for _ in tf.range(steps - 1):
            sums = self.strategy.run(self._compiled, args=(next(iterator),))
        return self._reduce(sums)

    @property
    def steps_done(self) -> int:
        # Not int(iterations): under MirroredStrategy its value is a MirroredVariable, which int() refuses.
        return int(self.optimizer.iterations.numpy())

    def run_steps(self, iterator, steps: int) -> dict[str, float]:
        return _metrics(self._loop(iterator, tf.constant(steps)))

    def step(self, batch) -> dict[str, float]:
        """One step on one global batch (split over the replicas); returns the logged metrics."""
        distributed = self.strategy.experimental_distribute_values_from_function(
            lambda ctx: {k: _replica_rows(v, ctx) for k, v in batch.items()})
        return _metrics(self._one_step(distributed))

    def _reduced_step(self, distributed):
        return self._reduce(self.strategy.run(self._compiled, args=(distributed,)))

    def _reduce(self, per_replica_sums):
        """Only the last step of a loop is reduced across replicas: that is what gets logged."""
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica_sums.items()}


def _replica_rows(value, context):
    rows = tf.shape(value)[0] // context.num_replicas_in_sync
    return value[context.replica_id_in_sync_group * rows:(context.replica_id_in_sync_group + 1) * rows]


def _sums(outputs):
    """Numerators and denominators, so replicas' metrics add up exactly."""
    w, t = outputs["mlm_weights"], outputs["token_weights"]
    predicted, labels = outputs["rtd_predictions"], outputs["rtd_labels"]
    correct_mlm = tf.cast(tf.equal(outputs["mlm_predictions"], outputs["mlm_targets"]), tf.float32)
    return {
        "mlm_loss_sum": outputs["mlm_loss_sum"], "rtd_loss_sum": outputs["rtd_loss_sum"],
        "mlm_correct": tf.reduce_sum(correct_mlm * w), "mlm_count": tf.reduce_sum(w),
        "rtd_correct": tf.reduce_sum(tf.cast(tf.equal(predicted, labels), tf.float32) * t),
        "rtd_count": tf.reduce_sum(t),
        "rtd_true_positive": tf.reduce_sum(predicted * labels * t),
        "rtd_predicted_positive": tf.reduce_sum(predicted * t), "rtd_positive": tf.reduce_sum(labels * t),
        "sampled_replaced": tf.reduce_sum(outputs["sampled_replaced"]),
    }


def _metrics(sums) -> dict[str, float]:
    s = {k: float(v) for k, v in sums.items()}
    return {
        "loss": s["loss"], "mlm_loss": s["mlm_loss_sum"] / max(s["mlm_count"], 1.0),
        "rtd_loss": s["rtd_loss_sum"] / max(s["rtd_count"], 1.0),
        "mlm_accuracy": s["mlm_correct"] / max(s["mlm_count"], 1.0),
        "rtd_accuracy": s["rtd_correct"] / max(s["rtd_count"], 1.0),
        "rtd_precision": s["rtd_true_positive"] / max(s["rtd_predicted_positive"], 1.0),
        "rtd_recall": s["rtd_true_positive"] / max(s["rtd_positive"], 1.0),
        "replaced_rate": s["rtd_positive"] / max(s["rtd_count"], 1.0),
        "sampled_replacement_rate": s["sampled_replaced"] / max(s["mlm_count"], 1.0),
    }


def train(config: Config, data_dir: str, model_dir: str, strategy_name: str = "cpu", tpu: str | None = None,
          tokenizer_dir: str | None = None, init_checkpoint: str | None = None,
          init_generator: str | None = None) -> dict[str, float]:
    """Trains (or resumes) until `config.pretrain.num_train_steps`; returns the last logged metrics. A fresh run
    may start from a transformers discriminator + generator pair (`init_checkpoint`, see `hf_pair`)."""
    description = read_dataset_description(data_dir)
    tokenizer = JapaneseTokenizer.load(tokenizer_dir or storage.join(data_dir, "tokenizer"))
    if tokenizer.vocab_hash() != description["vocab_sha256"]:
        raise InputError(f"--tokenizer: vocab.txt differs from the one {data_dir} was built with")
    init = hf_pair(init_checkpoint, init_generator) if init_checkpoint else None
    if init:
        if JapaneseTokenizer.load(init[0].directory, "--init-checkpoint").vocab_hash() != description["vocab_sha256"]:
            raise InputError(f"--init-checkpoint {init[0].directory}: its vocab.txt differs from the one {data_dir} "
                             "was built with (build pretraining-data with --tokenizer set to the model's dir)")
        model = dataclasses.replace(pretrainer_config(*init), hidden_dropout=config.model.hidden_dropout)
        config = dataclasses.replace(config, model=model)
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, vocab_size=tokenizer.vocab_size))
    _check_fits(config, description["max_seq_length"])
    strategy = make_strategy(strategy_name, tpu)
    if config.pretrain.batch_size % strategy.num_replicas_in_sync:
        raise InputError(f"pretrain.batch_size {config.pretrain.batch_size} is not divisible by "
                         f"{strategy.num_replicas_in_sync} replicas")
    _check_same_model(model_dir, config)
    specials = special_ids(tokenizer)
    run = Pretraining(config, specials, strategy)
    pretrain = config.pretrain
    # Variables first: a checkpoint made before them would list only the optimizer's references to them.
    _build(run, description["max_seq_length"])
    checkpoint = tf.train.Checkpoint(model=layer_checkpoint(model=run.model), optimizer=run.optimizer)
    manager = tf.train.CheckpointManager(checkpoint, storage.join(model_dir, CHECKPOINTS_DIR),
                                         max_to_keep=pretrain.keep_checkpoint_max)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        print(f"pretrain: resumed from {manager.latest_checkpoint} at step {run.steps_done}"
              + (" (its own checkpoint; --init-checkpoint applies to a fresh start only)" if init else ""))
    elif init:
        for note in load_hf_pair(run.model, *init):
            print(f"pretrain: note: {note}")
        print(f"pretrain: starting from {init[0].directory} and {init[1].directory}")
    storage.make_output_dir(model_dir, "--model-dir")  # after the start was found good: bad input writes nothing
    _write_model_dir(model_dir, config, data_dir, description, tokenizer, specials)

    step = run.steps_done
    per_replica = pretrain.batch_size // strategy.num_replicas_in_sync
    # A resumed run starts a fresh data order rather than replaying the examples it already saw.
    dataset = strategy.distribute_datasets_from_function(
        lambda ctx: pretraining_dataset(data_dir, description, per_replica, pretrain.seed + step, ctx))
    iterator = iter(dataset)
    metrics = {}
    with contextlib.closing(tf.summary.create_file_writer(storage.join(model_dir, "train"))) as writer, \
            tqdm(total=pretrain.num_train_steps, initial=step, desc="pretrain", unit="step", mininterval=2) as progress:
        while step < pretrain.num_train_steps:
            # A fresh run logs its first step alone, so the log shows where the metrics started from.
            chunk = 1 if step == 0 else min(pretrain.steps_per_execution, pretrain.num_train_steps - step,
                                            _steps_to_next(step, pretrain.log_every_steps),
                                            _steps_to_next(step, pretrain.save_checkpoints_steps))
            started = time.time()
            metrics = run.run_steps(iterator, chunk)
            step = run.steps_done
            metrics["examples_per_second"] = chunk * pretrain.batch_size / (time.time() - started)
            metrics["learning_rate"] = float(run.optimizer.learning_rate)
            progress.update(chunk)
            progress.set_postfix(loss=f"{metrics['loss']:.3f}", rtd_acc=f"{metrics['rtd_accuracy']:.3f}")
            if step % pretrain.log_every_steps == 0 or step in (1, pretrain.num_train_steps):
                _log(writer, step, metrics)
            if step % pretrain.save_checkpoints_steps == 0 or step == pretrain.num_train_steps:
                manager.save(checkpoint_number=step)
                save_encoder(run.model, model_dir, step, pretrain.keep_checkpoint_max, pretrain.keep_encoder_every_steps)
    return metrics


def hf_pair(init: str, generator: str | None) -> tuple[HfCheckpoint, HfCheckpoint]:
    """The discriminator and generator to start from: export-hf's `INIT/discriminator` and `INIT/generator`, or
    `INIT` itself and `generator` when they were published as two models (as google's ELECTRAs were)."""
    if generator is None:
        if not all(HfCheckpoint.is_hf_dir(storage.join(init, part)) for part in ("discriminator", "generator")):
            raise InputError(f"--init-checkpoint {init}: expected discriminator/ and generator/ transformers dirs "
                             "inside (as export-hf writes); name a separate generator with --init-generator")
        init, generator = storage.join(init, "discriminator"), storage.join(init, "generator")
    return HfCheckpoint.open(init, "--init-checkpoint"), HfCheckpoint.open(generator, "--init-generator")


def _check_fits(config: Config, max_seq_length: int) -> None:
    """Data the model cannot take fails here, not as a shape error inside the first step."""
    if max_seq_length > config.model.max_position_embeddings:
        raise InputError(f"--data: examples of {max_seq_length} tokens, but model.max_position_embeddings is "
                         f"{config.model.max_position_embeddings}")
    if config.pretrain.max_predictions_per_seq > max_seq_length:
        raise InputError(f"pretrain.max_predictions_per_seq {config.pretrain.max_predictions_per_seq} exceeds the "
                         f"data's {max_seq_length} tokens per example")


def _check_same_model(model_dir: str, config: Config) -> None:
    """Resuming with other sizes would fail deep inside checkpoint restore; say which setting changed."""
    path = storage.join(model_dir, MODEL_CONFIG)
    if not gfile.exists(path):
        return
    previous = storage.read_json(path, "--model-dir").get("model", {})
    changed = [k for k, v in dataclasses.asdict(config.model).items() if k in previous and previous[k] != v]
    if changed:
        raise InputError(f"--model-dir {model_dir}: holds a model with another "
                         + ", ".join(f"{k} ({previous[k]} there, {getattr(config.model, k)} now)" for k in changed)
                         + "; use a new --model-dir or the same config")


def _steps_to_next(step: int, every: int) -> int:
    return every - step % every


def _build(run: Pretraining, length: int) -> None:
    """Creates every variable (model and optimizer slots) so a checkpoint can be restored into them."""
    with run.strategy.scope():
        run.model.build_variables(length)
        run.optimizer.build(run.model.trainable_variables)


def _log(writer, step: int, metrics: dict[str, float]) -> None:
    with writer.as_default(step=step):
        for name, value in metrics.items():
            tf.summary.scalar(name, value)
    writer.flush()
    print(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()), flush=True)


def save_encoder(model: ElectraPretrainer, model_dir: str, step: int, keep_last: int = 1, keep_every: int = 0) -> None:
    """The discriminator's embeddings and encoder alone, what fine-tuning loads (`encoder/ckpt-STEP`); keeps the
    last `keep_last` of them and those of steps divisible by `keep_every` (select-checkpoint compares them).

    A CheckpointManager, so a crash mid-write leaves the previous encoder as the latest, never a half-written one.
    """
    encoder = layer_checkpoint(embeddings=model.embeddings, encoder=model.discriminator)
    directory = storage.join(model_dir, ENCODER_DIR)
    tf.train.CheckpointManager(encoder, directory, max_to_keep=None).save(checkpoint_number=step)
    paths = encoder_checkpoints(model_dir)
    for i, path in enumerate(paths):
        if i < len(paths) - keep_last and not (keep_every and checkpoint_step(path) % keep_every == 0):
            for file in gfile.glob(f"{path}.*"):
                gfile.remove(file)


def _write_model_dir(model_dir, config, data_dir, description, tokenizer, specials) -> None:
    storage.write_json(storage.join(model_dir, MODEL_CONFIG), {
        "model": dataclasses.asdict(config.model),
        "pretrain": dataclasses.asdict(config.pretrain),
        "max_seq_length": description["max_seq_length"],
        "special_ids": dataclasses.asdict(specials),
        "data": {"path": data_dir, "examples": description["examples"], "corpus": description["corpus"]},
    })
    tokenizer_dir = storage.join(model_dir, "tokenizer")
    if not gfile.exists(tokenizer_dir):
        tokenizer.save(tokenizer_dir)
