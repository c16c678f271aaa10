"""`electra-ja serve` and `electra-ja predict` fail with one clear line, never a traceback."""

import socket

import pytest

from data_prep.console import registered_commands, run


@pytest.mark.parametrize("argv, message", [
    (["serve", "--model-base-path", "{tmp}/nowhere"], "--model-base-path {tmp}/nowhere: no such directory"),
    (["serve", "--model-base-path", "{tmp}"], "no numeric version directory"),
    (["serve", "--model-base-path", "{export}", "--grpc-port", "{busy}", "--rest-port", "0"],
     "--grpc-port {busy}: cannot listen on 127.0.0.1:{busy}"),
    (["predict", "--server", "127.0.0.1:1", "--protocol", "rest", "--tokenizer", "{export}/1/assets", "東京"],
     "--server 127.0.0.1:1 (REST): [Errno 111] Connection refused"),
    (["predict", "--server", "127.0.0.1:1", "--tokenizer", "{export}/1/assets", "東京"],
     "--server 127.0.0.1:1 (gRPC): UNAVAILABLE"),
    (["predict", "--server", "127.0.0.1:1", "東京"], "--tokenizer is required with --server"),
    (["predict", "--model-base-path", "{tmp}", "東京"], "no <version>/saved_model.pb"),
    (["predict", "--model-base-path", "{export}", "--batch-tokens", "0", "東京"], "--batch-tokens 0: expected a positive"),
    (["predict", "--model-base-path", "{export}", "--batch-size", "-1", "東京"], "--batch-size -1: expected a positive"),
])
def test_serving_commands_fail_with_one_line(capsys, tmp_path, export_dir, argv, message):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        fill = {"tmp": str(tmp_path), "export": export_dir, "busy": busy.getsockname()[1]}
        code = run([a.format(**fill) for a in argv], registered_commands())
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err and message.format(**fill) in err.strip().splitlines()[-1]


def test_serving_needs_no_training_code():
    """A client machine installs the package but never loads pretrain/finetune (DESIGN.md's import direction)."""
    import subprocess
    import sys

    check = ("import sys, serving.client, serving.server, serving.cli; "
             "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'pretrain', 'finetune'}) + "
             "sorted(m for m in sys.modules if m.startswith('export.') and m != 'export.contract'); "
             "print(loaded); sys.exit(bool(loaded))")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-1000:]
