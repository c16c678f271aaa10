"""Writes one benchmark's section into docs/benchmarks.md, leaving the other benchmarks' sections alone."""

import argparse
import pathlib
import platform
import re
import subprocess


HEADERS = {
    "benchmarks.md": "# Benchmarks\n\nSide-by-side measurements, each section written by the command it names.\n",
    "results.md": "# Results\n\nExperiments and what they showed, each section written by the command it names.\n",
}


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return f"{cpu}, {len(open('/proc/cpuinfo').read().split('processor')) - 1} cores, Python " \
           f"{platform.python_version()}, commit {commit or 'unknown'}"


def group_and_dir(spec: str) -> tuple[str, str]:
    """argparse type of a GROUP=DIR flag: a run's directory and the group (recipe, init) whose seeds it joins."""
    group, separator, directory = spec.partition("=")
    if not separator or not group or not directory:
        raise argparse.ArgumentTypeError(f"{spec!r}: expected GROUP=DIR")
    return group, directory


def write_section(path: str, name: str, body: str) -> None:
    target = pathlib.Path(path)
    text = target.read_text(encoding="utf-8") if target.exists() else HEADERS.get(target.name, f"# {target.stem}\n")
    block = f"<!-- {name}:start -->\n{body.rstrip()}\n<!-- {name}:end -->\n"
    pattern = re.compile(rf"<!-- {name}:start -->.*?<!-- {name}:end -->\n", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    tmp = target.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
