"""What the benchmarks share: the machine, clocks, runs in turn with medians and ratios, markdown tables.

    .venv/bin/python benchmarks/harness.py                    # this machine, as a markdown table
    .venv/bin/python benchmarks/harness.py --pairs 5 \\
        "pgdist train --config configs/cartpole.yaml --out {out}" \\
        "pgdist train --config configs/cartpole.yaml --backend local --out {out}"

Given commands, it runs them in turn (A B, then B A, ...) after a warm-up round, each run a fresh
process (``{out}``: a fresh folder), and prints per command its wall seconds, CPU seconds, peak RSS
and wall time over the first command's as the median of the rounds' ratios, so that a drift of the
machine's speed falls on both alike. Other code: ``env PYTHONPATH=/other/checkout ...``.

Every script here prints the machine first and its results as markdown tables, ready for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("torch", "ray", "gymnasium", "numpy", "mujoco", "ale-py", "minatar", "stable-baselines3")


# --- the machine ---------------------------------------------------------------------------


def version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as file:
        for line in file:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def memory_gib() -> str:
    with contextlib.suppress(OSError), open("/proc/meminfo") as file:
        for line in file:
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.0f} GiB"
    return "unknown"


def git_commit() -> str:
    """HEAD's short hash, and the tracked files that differ from it, if any."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                capture_output=True, text=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    changed = [line[3:] for line in status if line.strip()]
    return commit + (f" (uncommitted changes in {len(changed)} files)" if changed else "")


def machine() -> list[tuple[str, str]]:
    """What a result depends on: the CPU, the cores, the versions, the code and the date."""
    cores = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    rows = [("date", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())), ("CPU", cpu_model()),
            ("cores", f"{cores} ({usable} usable by this process)"), ("memory", memory_gib()),
            ("python", platform.python_version())]
    rows += [(package, version(package)) for package in PACKAGES if version(package)]
    rows.append(("pgdist", f"{version('pgdist')}, commit {git_commit()}"))
    return rows


def print_machine() -> None:
    table(["machine", ""], machine())


def config_overrides(parser: argparse.ArgumentParser, pairs: list[str]) -> dict:
    """``FIELD=VALUE`` words as Config fields' values (``pgdist.config.coerce``); a usage error if one is not."""
    from pgdist.config import ConfigError, coerce

    try:
        return {name: coerce(name, value) for name, _, value in (pair.partition("=") for pair in pairs)}
    except ConfigError as error:
        parser.error(f"--set: {error}")


# --- clocks ----------------------------------------------------------------------------------


@dataclass
class Timing:
    wall: float = 0.0  # seconds
    cpu: float = 0.0  # this process's CPU seconds, every thread: what other work on the machine inflates less


@contextlib.contextmanager
def timed() -> Iterator[Timing]:
    """The wall and CPU seconds of the block, in the Timing it yields (filled in at its end)."""
    timing = Timing()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield timing
    finally:
        timing.wall, timing.cpu = time.perf_counter() - wall, time.process_time() - cpu


class Meter:
    """The calling thread's CPU seconds and the calls of a function while ``on(owner, name)`` holds.

    ``on`` replaces ``owner.name`` (a class's method, an object's or a module's function) by a timed
    wrapper and puts it back at the end; ``count(*args)`` adds to ``items`` (say, the copies a vector
    env's step steps).
    """

    def __init__(self):
        self.seconds, self.calls, self.items = 0.0, 0, 0

    @contextlib.contextmanager
    def on(self, owner, name: str, count: Callable[..., int] | None = None):
        original, own = getattr(owner, name), name in vars(owner)

        def metered(*args, **kwargs):
            start = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.thread_time() - start
                self.calls += 1
                self.items += count(*args, **kwargs) if count else 0

        setattr(owner, name, metered)
        try:
            yield self
        finally:
            if own:
                setattr(owner, name, original)
            else:
                delattr(owner, name)


@contextlib.contextmanager
def vector_env_steps(meter: Meter) -> Iterator[Meter]:
    """``meter`` on every step of pgdist's vector envs in this process: their CPU time, and in ``items``
    the copies each steps (all, or the ``active`` ones where pgdist steps copies one by one)."""
    from pgdist.vector_envs import GymnasiumVectorEnv, ProtocolVectorEnv

    def copies(env, actions, active=None) -> int:
        return len(actions) if active is None else int(active.sum())

    with meter.on(GymnasiumVectorEnv, "step", copies), meter.on(ProtocolVectorEnv, "step", copies):
        yield meter


@contextlib.contextmanager
def one_ray_instance() -> Iterator[None]:
    """One local Ray instance (pgdist's own start, on loopback) for the block: every Learner in it joins
    it, so that all its workers are actors; shut down at the end if this call started it."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only; read when ray is imported
    import ray

    from pgdist.ray import start_ray

    with timed() as timing:
        started = start_ray(None)
    print(f"  Ray started in {timing.wall:.1f} s", file=sys.stderr, flush=True)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


# --- runs in turn ------------------------------------------------------------------------------


def in_turn(runs: dict[str, Callable[[], object]], rounds: int) -> dict[str, list]:
    """Each run once a round, in turn, the order reversed every other round (A B, B A, ...), so that the
    machine's drift falls on every run alike; each run's results in round order."""
    names = list(runs)
    results: dict[str, list] = {name: [] for name in names}
    for turn in range(rounds):
        for name in names if turn % 2 == 0 else names[::-1]:
            results[name].append(runs[name]())
    return results


def median(values) -> float:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(values) if values else math.nan


def pair_ratios(values: list[float], bases: list[float]) -> list[float]:
    """Round by round, values over the base's of the same round."""
    return [value / base for value, base in zip(values, bases)]


# --- markdown ------------------------------------------------------------------------------------


def markdown(headers: list[str], rows: list, left: int = 1) -> str:
    """A markdown table: the first ``left`` columns left-aligned, the others right-aligned."""
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" if i >= left else "---" for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def table(headers: list[str], rows: list, left: int = 1) -> None:
    print(markdown(headers, rows, left), flush=True)


def number(value, digits: int = 0) -> str:
    """``1,234.5``; '–' for a missing figure, 'unsolved' for infinity (a run that never got there)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "unsolved"
    return f"{value:,.{digits}f}"


def spread(values, digits: int = 1) -> str:
    """min / median / max, of the figures that are there."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "–"
    return " / ".join(number(v, digits) for v in (min(values), statistics.median(values), max(values)))


def ratios(values: list[float], digits: int = 2) -> str:
    return " ".join(f"{value:.{digits}f}" for value in values)


# --- child processes -----------------------------------------------------------------------------


@dataclass
class Command:
    """A finished child process: its output lines, each with the seconds since launch it arrived at."""

    returncode: int
    seconds: float  # launch to exit
    cpu_seconds: float  # user + system, of it and the children it waited for
    peak_rss_mib: float  # the largest resident set among those (at least the launching process's at its fork)
    lines: list[tuple[float, str]] = field(default_factory=list)
    timed_out: bool = False

    def first(self, pattern: str) -> tuple[float, re.Match] | None:
        regex = re.compile(pattern)
        for at, line in self.lines:
            match = regex.search(line)
            if match:
                return at, match
        return None

    def tail(self, lines: int = 15) -> str:
        return "\n".join(line for _, line in self.lines[-lines:])


def run_command(command: list[str], log: Path | None = None, timeout: float | None = None) -> Command:
    """Run ``command`` from the repository's root with unbuffered output and no RAY_ADDRESS (a fresh
    shell's), its stdout and stderr timed line by line (and written to ``log``); killed with all it
    started at ``timeout``."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("RAY_ADDRESS", None)
    lines: list[tuple[float, str]] = []
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, text=True, bufsize=1, start_new_session=True)

    def read() -> None:
        with open(log or os.devnull, "w") as file:
            for line in process.stdout:
                at = time.perf_counter() - start
                lines.append((at, line.rstrip("\n")))
                file.write(f"[{at:8.3f}] {line}")
                file.flush()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # its own session: it and what it started (Ray's processes)

    timer = threading.Timer(timeout, kill) if timeout else None
    if timer:
        timer.start()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if timer:
        timer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    reader.join(timeout=10)  # a grandchild that kept the pipe open must not hold us
    return Command(process.returncode, seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                   list(lines), killed.is_set())


def compare_commands(commands: list[str], pairs: int, warmups: int = 1) -> None:
    """The commands in turn, ``pairs`` rounds after ``warmups`` rounds not counted; a table of them."""
    def run(text: str) -> Command:
        with tempfile.TemporaryDirectory() as folder:
            result = run_command(shlex.split(text.replace("{out}", f"{folder}/out")))
        if result.returncode != 0:
            raise SystemExit(f"exit {result.returncode}: {text}\n{result.tail()}")
        return result

    runs = {text: functools.partial(run, text) for text in commands}
    in_turn(runs, warmups)
    results = in_turn(runs, pairs)
    first = [r.seconds for r in results[commands[0]]]
    print(f"{pairs} rounds in turn after {warmups} not counted; wall / the first: the median of the rounds' ratios\n")
    table(["command", "wall s (min / median / max)", "CPU s (median)", "peak RSS MiB (median)", "wall / the first",
           "the rounds' ratios"],
          [[f"`{text}`", spread([r.seconds for r in rs], 2), number(median([r.cpu_seconds for r in rs]), 2),
            number(median([r.peak_rss_mib for r in rs])), f"{median(pair_ratios([r.seconds for r in rs], first)):.3f}",
            ratios(pair_ratios([r.seconds for r in rs], first))]
           for text, rs in results.items()])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("commands", nargs="*", help="commands to run in turn ({out}: a fresh folder per run)")
    parser.add_argument("--pairs", type=int, default=5, help="rounds of the commands in turn (default: 5)")
    parser.add_argument("--warmups", type=int, default=1, help="rounds run first and not counted (default: 1)")
    args = parser.parse_args(argv)
    print_machine()
    if args.commands:
        compare_commands(args.commands, args.pairs, args.warmups)
    return 0


if __name__ == "__main__":
    sys.exit(main())
