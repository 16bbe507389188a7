"""SIGINT and SIGTERM during ``pgdist train`` and ``resume``: the first ends the run after the iteration
in flight, a second at once; either way the run says where it stopped and how to go on."""

from __future__ import annotations

import signal

from pgdist.training import Callback


class Interrupted(KeyboardInterrupt):
    """A second SIGINT or SIGTERM: stop at once.

    A KeyboardInterrupt, so that nothing swallows it, and because Ray turns any exception a
    signal handler raises inside ``ray.wait`` or ``ray.get`` into a plain KeyboardInterrupt.
    """


class Interrupts(Callback):
    """SIGINT and SIGTERM during a run: the first ends it after the iteration in flight, a second at once.

    Either way the workers and the Ray instance pgdist started are stopped and the run's
    files closed; the checkpoint on disk is the last whole iteration's. Ray's own processes
    block SIGINT and its actors sit in process groups of their own, so a terminal's Ctrl-C
    (sent to the whole foreground group) reaches only this process among them.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signals = []  # the signals received, in order
        self.iteration = None  # the iteration in flight, if any
        self.at_once = False
        self.stopped_during = None  # the iteration a second signal cut short
        self.previous = {}
        self.closing = False

    def __enter__(self) -> Interrupts:
        self.previous = {number: signal.getsignal(number) for number in self.SIGNALS}
        self.install()
        return self

    def __exit__(self, *exc_info) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)

    def install(self) -> None:
        for number in self.SIGNALS:
            signal.signal(number, self.received)

    def on_start(self, learner) -> bool:
        self.iteration = learner.version + 1
        return not self.signals  # one that came while the workers started: no iteration at all

    def on_iteration(self, learner, metrics: dict) -> bool:
        self.iteration = learner.version + 1
        return not self.signals

    def on_end(self, learner, metrics: dict | None) -> None:
        self.iteration = None

    def ending(self) -> None:
        """From here on the run only stops its workers and closes files: let a signal not cut that short."""
        self.closing = True

    def received(self, number: int, frame=None) -> None:
        self.signals.append(number)
        if len(self.signals) == 2 and not self.closing:
            self.at_once = True
            self.stopped_during = self.iteration
            raise Interrupted(number)

    def summary(self, run) -> str:
        """One line: the iteration reached, the checkpoint kept, and the command that goes on."""
        from pgdist.runs import RunError, load_checkpoint

        name = signal.Signals(self.signals[-1]).name
        try:
            _, state = load_checkpoint(run.folder)
        except RunError:
            state = None
        reached = state["version"] if state else 0
        how = f"interrupted by {name} after iteration {reached} of {run.config.iterations}"
        if self.at_once:
            how = f"stopped at once by a second {name}"
            if self.stopped_during is not None and self.stopped_during > reached:  # not once its save was done
                how += f" during iteration {self.stopped_during} of {run.config.iterations}"
        if state is None:
            return (f"pgdist: {how}; no checkpoint saved yet; start again with "
                    f"'pgdist train --config {run.folder / 'config.yaml'} --out {run.folder}'")
        return (f"pgdist: {how}; kept {run.folder / 'checkpoint.pt'} (iteration {reached}); "
                f"continue with 'pgdist resume {run.folder}'")
