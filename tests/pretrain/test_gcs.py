"""gs:// end to end: pretraining data written to and pretraining read from a GCS emulator through TensorFlow's
own GCS filesystem; a killed run resumes from its gs:// checkpoints; a missing bucket fails before training."""

import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import DEBUG_CONFIG, GSD_DIR, REPO
from tests.gcs_emulator import GcsEmulator


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
    with GcsEmulator(str(tmp_path_factory.mktemp("gcs"))) as emulator:
        emulator.create_bucket("bucket")
        yield emulator


def objects(gcs, prefix):
    url = f"http://127.0.0.1:{gcs.port}/storage/v1/b/bucket/o?prefix={prefix}"
    return [item["name"] for item in json.load(urllib.request.urlopen(url, timeout=10)).get("items", [])]


def latest_saved_step(gcs):
    """The step CheckpointManager recorded last in its `checkpoint` file (written after the shards), or None."""
    url = f"http://127.0.0.1:{gcs.port}/download/storage/v1/b/bucket/o/run%2Fcheckpoints%2Fcheckpoint?alt=media"
    try:
        state = urllib.request.urlopen(url, timeout=10).read().decode()
    except urllib.error.HTTPError:
        return None
    return int(re.search(r'model_checkpoint_path: ".*ckpt-(\d+)"', state).group(1))


def command(*argv):
    return [sys.executable, "-c", "import sys; from data_prep.console import main; sys.exit(main())", *argv]


def pretrain(steps):
    return command("pretrain", "--data", "gs://bucket/data", "--model-dir", "gs://bucket/run",
                   "--config", str(DEBUG_CONFIG), "--num-train-steps", str(steps),
                   "--set", "pretrain.save_checkpoints_steps=20", "--set", "pretrain.log_every_steps=10")


def test_pretraining_on_gcs_is_killed_and_resumes(gcs, tokenizer_dir):
    data = subprocess.run(command("pretraining-data", "--corpus", str(GSD_DIR / "text" / "dev.txt"), "--tokenizer",
                                  tokenizer_dir, "--out", "gs://bucket/data", "--max-seq-length", "64",
                                  "--num-shards", "2"),
                          cwd=REPO, env=gcs.environment(), capture_output=True, text=True, timeout=300)
    assert data.returncode == 0, data.stderr[-3000:]
    assert {"data/dataset.json", "data/pretrain_data-00000-of-00002.tfrecord"} <= set(objects(gcs, "data/"))

    process = subprocess.Popen(pretrain(10_000), cwd=REPO, env=gcs.environment(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and latest_saved_step(gcs) is None:
        assert process.poll() is None, "training ended before its first checkpoint"
        time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    saved = latest_saved_step(gcs)

    resumed = subprocess.run(pretrain(saved + 10), cwd=REPO, env=gcs.environment(), capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from gs://bucket/run/checkpoints/ckpt-{saved} at step {saved}" in resumed.stdout
    stored = set(objects(gcs, "run/"))
    assert {f"run/checkpoints/ckpt-{saved + 10}.index", "run/model_config.json", "run/tokenizer/vocab.txt",
            f"run/encoder/ckpt-{saved + 10}.index"} <= stored


def test_missing_bucket_fails_before_training(gcs):
    result = subprocess.run(command("pretrain", "--data", "gs://bucket/data", "--model-dir", "gs://no-such-bucket/run",
                                    "--config", str(DEBUG_CONFIG)),
                            cwd=REPO, env=gcs.environment(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "--model-dir gs://no-such-bucket/run: bucket gs://no-such-bucket does not exist" in result.stderr
