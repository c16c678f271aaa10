import re
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import DEBUG_CONFIG, REPO


def pretrain_command(data, model_dir, steps):
    return [sys.executable, "-m", "pretrain", "pretrain", "--data", data, "--model-dir", str(model_dir),
            "--config", str(DEBUG_CONFIG), "--num-train-steps", str(steps),
            "--set", "pretrain.save_checkpoints_steps=20", "--set", "pretrain.log_every_steps=10"]


def test_killed_run_resumes_at_the_saved_step(pretraining_data, tmp_path):
    model_dir = tmp_path / "model"
    process = subprocess.Popen(pretrain_command(pretraining_data, model_dir, 10_000), cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    state = model_dir / "checkpoints" / "checkpoint"  # CheckpointManager writes it after the checkpoint itself
    while time.time() < deadline and not state.exists():
        assert process.poll() is None, "training ended before its first checkpoint"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)  # a real kill: no handler, no final save
    process.wait()
    saved = int(re.search(r'model_checkpoint_path: ".*ckpt-(\d+)"', state.read_text()).group(1))
    assert saved % 20 == 0 and saved < 10_000

    result = subprocess.run(pretrain_command(pretraining_data, model_dir, saved + 10), cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"resumed from {model_dir}/checkpoints/ckpt-{saved} at step {saved}" in result.stdout
    assert f"step {saved + 10}: loss" in result.stdout
    assert (model_dir / "checkpoints" / f"ckpt-{saved + 10}.index").exists()
    assert (model_dir / "encoder" / f"ckpt-{saved + 10}.index").exists()


def with_model(config, **changes):
    import dataclasses

    return dataclasses.replace(config, model=dataclasses.replace(config.model, **changes))


@pytest.mark.parametrize("change, strategy, message", [
    ({"max_position_embeddings": 32}, "cpu", "--data: examples of 64 tokens, but model.max_position_embeddings is 32"),
    ({}, "tpu", "--tpu (not given): no TPU reachable"),
])
def test_what_cannot_train_fails_before_the_model_dir_exists(pretraining_data, tmp_path, debug_config, change,
                                                             strategy, message):
    from data_prep.errors import InputError
    from pretrain.trainer import train

    with pytest.raises(InputError, match=re.escape(message)):
        train(with_model(debug_config, **change), pretraining_data, str(tmp_path / "model"), strategy)
    assert not (tmp_path / "model").exists()


def test_resuming_with_other_model_sizes_names_them(pretraining_data, tmp_path, debug_config):
    import dataclasses

    from data_prep.errors import InputError
    from pretrain.trainer import train

    config = dataclasses.replace(debug_config, pretrain=dataclasses.replace(debug_config.pretrain, num_train_steps=1))
    train(config, pretraining_data, str(tmp_path / "model"))
    with pytest.raises(InputError, match=r"holds a model with another intermediate_size \(\d+ there, 96 now\)"):
        train(with_model(config, intermediate_size=96), pretraining_data, str(tmp_path / "model"))


def test_two_replica_training_saves_and_resumes(pretraining_data, tmp_path, debug_config, mirrored, monkeypatch,
                                                capsys):
    """train() end to end under MirroredStrategy over two logical CPUs (the CLI's --strategy mirrored): the resumed
    run starts from the weights and optimizer state the first run ended with."""
    import dataclasses

    import numpy as np

    from pretrain import trainer

    monkeypatch.setattr(trainer, "make_strategy", lambda name, tpu=None: mirrored)  # one strategy per process
    states = []  # per call of run_steps: the state before and after it
    run_steps = trainer.Pretraining.run_steps

    def state_of(run):
        return [v.numpy() for v in run.model.weights] + [run.optimizer.iterations.numpy()]

    def recorded_run_steps(run, iterator, steps):
        before = state_of(run)
        metrics = run_steps(run, iterator, steps)
        states.append((before, state_of(run)))
        return metrics

    monkeypatch.setattr(trainer.Pretraining, "run_steps", recorded_run_steps)
    model_dir = tmp_path / "model"
    for steps in (2, 4):
        config = dataclasses.replace(debug_config, pretrain=dataclasses.replace(
            debug_config.pretrain, num_train_steps=steps, save_checkpoints_steps=2, log_every_steps=1))
        metrics = trainer.train(config, pretraining_data, str(model_dir), "mirrored")
        assert np.isfinite(metrics["loss"]) and metrics["loss"] > 0
    assert f"resumed from {model_dir}/checkpoints/ckpt-2 at step 2" in capsys.readouterr().out
    assert (model_dir / "checkpoints" / "ckpt-4.index").exists()
    assert (model_dir / "encoder" / "ckpt-4.index").exists()
    assert len(states) == 4  # one step per call (log_every_steps=1)
    initial, end_of_first_run, start_of_resumed_run = states[0][0], states[1][1], states[2][0]
    assert end_of_first_run[-1] == start_of_resumed_run[-1] == 2
    for saved, restored in zip(end_of_first_run, start_of_resumed_run, strict=True):
        np.testing.assert_array_equal(restored, saved)
    assert sum(not np.array_equal(a, b) for a, b in zip(initial, start_of_resumed_run)) > len(initial) / 2
