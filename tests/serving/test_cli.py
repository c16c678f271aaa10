"""`electra-ja serve` and `electra-ja predict` fail with one clear line, never a traceback."""

import os
import socket

import pytest

from data_prep.console import registered_commands, run


@pytest.mark.parametrize("argv, message", [
    (["serve", "--model-base-path", "{tmp}/nowhere"], "--model-base-path {tmp}/nowhere: no such directory"),
    (["serve", "--model-base-path", "{tmp}"], "--model-base-path {tmp}: no numeric version directory"),
    (["predict", "--model-base-path", "{tmp}", "東京"], "--model-base-path {tmp}: no numeric version directory"),
    (["serve", "--model-base-path", "{partial}"], "--model-base-path {partial}/3: no saved_model.pb"),
    (["predict", "--model-base-path", "{partial}", "東京"], "--model-base-path {partial}/3: no saved_model.pb"),
    (["serve", "--model-base-path", "{export}", "--grpc-port", "{busy}", "--rest-port", "0"],
     "--grpc-port {busy}: cannot listen on 127.0.0.1:{busy}"),
    (["serve", "--model-base-path", "{export}", "--grpc-port", "70000"], "--grpc-port 70000: expected 0..65535"),
    (["serve", "--model-base-path", "{export}", "--rest-port", "70000"], "--rest-port 70000: expected 0..65535"),
    (["serve", "--model-base-path", "{export}", "--rest-port", "-5"], "--rest-port -5: expected 0..65535"),
    (["serve", "--model-base-path", "{export}", "--max-batch-size", "0"],
     "--max-batch-size 0: expected a positive number"),
    (["serve", "--model-base-path", "{export}", "--tensorflow-intra-op-parallelism", "-1"],
     "--tensorflow-intra-op-parallelism -1: expected at least 0"),
    (["predict", "--server", "127.0.0.1:1", "--protocol", "rest", "--tokenizer", "{export}/1/assets", "東京"],
     "--server 127.0.0.1:1 (REST): [Errno 111] Connection refused"),
    (["predict", "--server", "127.0.0.1:1", "--tokenizer", "{export}/1/assets", "東京"],
     "--server 127.0.0.1:1 (gRPC): UNAVAILABLE"),
    (["predict", "--server", "127.0.0.1:1", "東京"], "--tokenizer is required with --server"),
    (["predict", "--server", "127.0.0.1:1", "--tokenizer", "{export}/1/assets", "--max-seq-length", "2", "東京"],
     "--max-seq-length 2: expected at least 3"),
    (["predict", "--model-base-path", "{export}", "--max-seq-length", "2", "東京"],
     "--max-seq-length 2: expected at least 3"),
    (["predict", "--model-base-path", "{export}", "--max-seq-length", "65", "東京"],
     "--max-seq-length 65: more than the model's 64 positions"),
    (["predict", "--model-base-path", "{export}", "--batch-tokens", "0", "東京"], "--batch-tokens 0: expected a positive"),
    (["predict", "--model-base-path", "{export}", "--batch-size", "-1", "東京"], "--batch-size -1: expected a positive"),
    (["predict", "--model-base-path", "{export}", "--requests-in-flight", "0", "東京"],
     "--requests-in-flight 0: expected a positive"),
])
def test_serving_commands_fail_with_one_line(capsys, tmp_path, export_dir, argv, message):
    # A base path whose highest version is an empty directory (an interrupted copy) and a good lower one.
    partial = tmp_path / "partial"
    (partial / "3").mkdir(parents=True)
    (partial / "1").symlink_to(f"{export_dir}/1")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        fill = {"tmp": str(tmp_path), "export": export_dir, "busy": busy.getsockname()[1], "partial": str(partial)}
        code = run([a.format(**fill) for a in argv], registered_commands())
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err and message.format(**fill) in err.strip().splitlines()[-1]


def test_serving_needs_no_training_code(export_dir):
    """A client machine installs the package but never loads pretrain/finetune (DESIGN.md's import direction),
    also on the way through a real `electra-ja predict`, where imports inside functions happen."""
    import subprocess
    import sys

    check = ("import sys; from data_prep.console import main; "
             f"code = main(['predict', '--model-base-path', {export_dir!r}, '東京に住む。']); "
             "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('pretrain', 'finetune', 'export') "
             "and m.split('.')[-1] not in ('cli', 'contract') and '.' in m); "
             "print(loaded); sys.exit(code or bool(loaded))")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-1000:]
    assert '"entities"' in result.stdout


CONSOLE = "import sys; from data_prep.console import main; sys.exit(main())"


@pytest.mark.parametrize("verbose", [False, True])
def test_predict_prints_only_its_own_lines_unless_verbose(export_dir, verbose):
    """TensorFlow's C++ start-up lines (absl, oneDNN, CUDA) pass TF_CPP_MIN_LOG_LEVEL by; the console hides them."""
    import subprocess
    import sys

    argv = ["predict", "--model-base-path", export_dir, "東京に住む。"] + (["--verbose"] if verbose else [])
    result = subprocess.run([sys.executable, "-c", CONSOLE, *argv], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0 and '"entities"' in result.stdout
    if verbose:
        assert "absl::InitializeLog" in result.stderr
    else:
        assert result.stderr == ""
        error = subprocess.run([sys.executable, "-c", CONSOLE, "predict", "--model-base-path", "/nonexistent", "東京"],
                               capture_output=True, text=True, timeout=300)
        assert error.returncode == 2 and error.stderr == ("electra-ja predict: error: --model-base-path /nonexistent: "
                                                          "no such directory\n")


def test_serve_prints_only_its_own_lines_and_sets_tf_serving_thread_flags(export_dir):
    """Quiet, and the thread flags reach TensorFlow: the start line reads them back from its runtime config."""
    import signal
    import subprocess
    import sys

    server = subprocess.Popen([sys.executable, "-c", CONSOLE, "serve", "--model-base-path", export_dir,
                               "--grpc-port", "0", "--rest-port", "0", "--tensorflow-intra-op-parallelism", "1",
                               "--tensorflow-inter-op-parallelism", "3"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        started = server.stdout.readline()
        assert started.startswith("serve:") and started.rstrip().endswith("TensorFlow threads: intra-op 1, inter-op 3")
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=60)
    assert err == "", err
