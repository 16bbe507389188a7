"""What a run shows while it trains: a bar or a line per iteration, and Python warnings as pgdist's lines."""

from __future__ import annotations

import re
import sys

from pgdist.training import Callback


class WarningLines:
    """Python warnings as ``pgdist: warning: MESSAGE`` lines, each message once; --debug keeps Python's form."""

    def __init__(self):
        self.shown = set()

    def show(self, message, category, filename, lineno, file=None, line=None) -> None:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(message)).strip().removeprefix("WARN: ")  # gymnasium's colour, prefix
        if text not in self.shown:
            self.shown.add(text)
            print(f"pgdist: warning: {text}", file=sys.stderr)


class Progress(Callback):
    """A live bar on a terminal; a plain line per iteration elsewhere (CI, ray job logs)."""

    def __init__(self, iterations: int, done: int):
        self.bar = None
        if sys.stdout.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=iterations, initial=done, unit="it", dynamic_ncols=True)

    def on_iteration(self, learner, metrics: dict) -> None:
        if self.bar is None:
            print(progress_line(metrics), flush=True)
        else:
            self.bar.set_postfix_str(
                f"return {metrics['return_mean']:.2f}  {metrics['steps'] / metrics['seconds']:,.0f} steps/s"
            )
            self.bar.update(1)

    def on_end(self, learner, metrics: dict | None) -> None:
        if self.bar is not None:
            self.bar.close()


def progress_line(metrics: dict) -> str:
    return (
        f"iteration {metrics['iteration']:>5}  return {metrics['return_mean']:9.2f}  "
        f"steps {metrics['steps']:>8}  {metrics['steps'] / metrics['seconds']:>10.0f} steps/s"
    )
