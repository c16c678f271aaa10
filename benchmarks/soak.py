"""A soak of `electra-ja serve`: 16 clients (half gRPC, half REST, each EntityClient.predict of one GSD test sentence
at a time) for 10 minutes against a server in its own process on 127.0.0.1. Per minute: requests, errors, p50 and
p99 latency, and the server's resident memory. Every call has a deadline (60 s) and the run ends at its time limit.

Goals (issue: serving like TF Serving): 0 errors; the server's memory after the first minute grows by < 5%; p99 of
the last minute within 1.5× of the second's.

    python benchmarks/soak.py --model-base-path build/demo/export --out docs/benchmarks.md
"""

import argparse
import pathlib
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks.report import machine, write_section  # noqa: E402
from data_prep.console import hide_tensorflow_start_up  # noqa: E402
if __name__ == "__main__":
    hide_tensorflow_start_up()  # before TensorFlow loads

from data_prep.gsd import load_split  # noqa: E402
from serving.client import EntityClient  # noqa: E402
from serving.versions import find_version  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
GSD = REPO / "data" / "ud_japanese_gsd_ne" / "r2.8-NE"
CONSOLE = "import sys; from data_prep.console import main; sys.exit(main())"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def resident_mb(pid: int) -> float:
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def soak(base_path: str, minutes: int, clients: int) -> tuple[list[dict], float]:
    """Per-minute rows, and the server's resident MB when the clients started."""
    grpc_port, rest_port = free_port(), free_port()
    server = subprocess.Popen([sys.executable, "-c", CONSOLE, "serve", "--model-base-path", base_path, "--grpc-port",
                               str(grpc_port), "--rest-port", str(rest_port)], stdout=subprocess.PIPE, text=True,
                              stderr=sys.stderr)  # this process's own errors stream: its descriptor 2 is hidden
    try:
        if not server.stdout.readline().startswith("serve:"):
            raise SystemExit(f"soak: `electra-ja serve` did not start (exit {server.wait()})")
        texts = [s.text for s in load_split(str(GSD), "test")]
        assets = f"{find_version(base_path)[1]}/assets"
        started, calls, lock = time.monotonic(), [], threading.Lock()  # calls: (minute, seconds, ok)
        end = started + minutes * 60
        start_memory = resident_mb(server.pid)

        def client(index: int) -> None:
            protocol, port = ("grpc", grpc_port) if index % 2 == 0 else ("rest", rest_port)
            with EntityClient.for_server(f"127.0.0.1:{port}", protocol, "ner", assets) as entity_client:
                turn = index
                while (now := time.monotonic()) < end:
                    try:
                        entity_client.predict([texts[turn % len(texts)]])
                        ok = True
                    except Exception:  # noqa: BLE001 - every failure counts as an error
                        ok = False
                    with lock:
                        calls.append((int((now - started) // 60), time.monotonic() - now, ok))
                    turn += clients

        memory = {}

        def sample_memory() -> None:
            while time.monotonic() < end:
                minute = int((time.monotonic() - started) // 60)
                memory[minute] = max(memory.get(minute, 0.0), resident_mb(server.pid))
                time.sleep(5)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        threads.append(threading.Thread(target=sample_memory))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=minutes * 60 + 120)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
    rows = []
    for minute in range(minutes):
        times = [seconds for m, seconds, ok in calls if m == minute and ok]
        rows.append({"minute": minute + 1, "requests": sum(1 for m, _, _ in calls if m == minute),
                     "errors": sum(1 for m, _, ok in calls if m == minute and not ok),
                     "p50": percentile(times, 50) * 1000 if times else float("nan"),
                     "p99": percentile(times, 99) * 1000 if times else float("nan"),
                     "rss": memory.get(minute, float("nan"))})
    return rows, start_memory


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-base-path", required=True, help="an `electra-ja export` base path")
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--out", default="docs/benchmarks.md")
    args = parser.parse_args()
    rows, start_memory = soak(args.model_base_path, args.minutes, args.clients)
    errors = sum(row["errors"] for row in rows)
    growth = rows[-1]["rss"] / rows[0]["rss"] - 1
    p99_ratio = rows[-1]["p99"] / rows[1]["p99"]
    table = "\n".join(f"| {r['minute']} | {r['requests']} | {r['errors']} | {r['p50']:.1f} | {r['p99']:.1f} | "
                      f"{r['rss']:.0f} |" for r in rows)
    verdict = {True: "met", False: "**missed**"}
    body = f"""## soak: `electra-ja serve` under {args.clients} clients for {args.minutes} minutes

Command: `python benchmarks/soak.py --model-base-path {args.model_base_path} --out {args.out}`. Machine: {machine()}.
{args.clients} client threads in one process ({args.clients // 2} gRPC, {args.clients - args.clients // 2} REST),
each sending one GSD test sentence per call through EntityClient (tokenization and decoding included) to a server
in its own process; latency per call, the server's resident memory (VmRSS, highest of each minute; {start_memory:.0f} MB
when the clients started).

| minute | requests | errors | p50 ms | p99 ms | server RSS MB |
|---:|---:|---:|---:|---:|---:|
{table}

- errors: {errors} (goal 0: {verdict[errors == 0]})
- memory, last minute against the first: {growth:+.1%} (goal < 5%: {verdict[growth < 0.05]})
- p99, last minute against the second: {p99_ratio:.2f}× (goal ≤ 1.5×: {verdict[p99_ratio <= 1.5]})
"""
    write_section(args.out, "soak", body)
    print(body)


if __name__ == "__main__":
    main()
