"""A run's folder, and everything in it.

    RUN/config.yaml              the resolved Config: ``pgdist train --config RUN/config.yaml`` reruns it
    RUN/metrics.csv, .jsonl      a row per iteration
    RUN/events.out.tfevents.*    the same metrics for TensorBoard (``tensorboard --logdir RUN``)
    RUN/checkpoint.pt            the latest state: policy, Adam, theta version, sampling counter, config
    RUN/checkpoint-NNNNNN.pt     kept every ``checkpoint_every`` iterations
    RUN/curve.png                the learning curve, redrawn as the run goes
    RUN/.lock                    held (``flock``) by the one process that writes the run; names it

Checkpoints load with ``torch.load(path, weights_only=True)``. A folder has one writer at a
time: ``Run.create`` and ``Run.resume`` take its lock before they touch anything in it, and
the operating system drops the lock when that process ends, however it ends. Readers
(``pgdist eval``, ``plot``) need no lock: checkpoints and rewritten metrics are replaced
whole, and a metrics row counts once its line is complete.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import json
import os
import pickle
import socket
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from pgdist.config import Config, ConfigError
from pgdist.metrics import METRICS, read_metrics, whole_lines
from pgdist.training import Callback

COLUMNS = tuple(METRICS)
CURVE_EVERY_SECONDS = 10.0
LOCK = ".lock"
# a disk that takes no more: full, over quota, or failing
DISK_ERRORS = {errno.ENOSPC: "its disk is full", errno.EDQUOT: "its disk quota is used up", errno.EIO: "an I/O error"}
# what torch.load and Config raise on a file that is not a whole pgdist checkpoint
NOT_A_CHECKPOINT = (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, TypeError, ValueError, ConfigError)


class RunError(Exception):
    """A run folder that cannot be used as asked; the message says what to do."""


class Run(Callback):
    """Writes a run folder as training goes; ``Run.create`` starts one, ``Run.resume`` continues one.

    It holds the folder's lock from its creation to ``close()``. A callback of
    ``pgdist.training.train``: each iteration's metrics and checkpoint are on disk before
    the next iteration begins.
    """

    def __init__(self, folder: Path, config: Config, checkpoint_every: int, mode: str, lock: int,
                 resumed_at: int | None = None):
        self.folder = Path(folder)
        # TensorBoard hides the events of iterations after the checkpoint a resume starts from, as the
        # CSV and JSONL drop their rows (SummaryWriter's purge_step); they are written again.
        self.purge_step = None if resumed_at is None else resumed_at + 1
        self.config = config
        self.checkpoint_every = checkpoint_every
        self.lock = lock
        self.csv_file = open(self.folder / "metrics.csv", mode, newline="")
        self.csv = csv.DictWriter(self.csv_file, fieldnames=COLUMNS, extrasaction="ignore")
        if mode == "w":
            self.csv.writeheader()
        self.jsonl = open(self.folder / "metrics.jsonl", mode)
        self.tensorboard = None
        self.curve_drawn = time.monotonic()
        self.saved = resumed_at  # the iteration of checkpoint.pt, the latest whole one on disk
        self.disk_failed = False  # said once: closing the files after it says nothing more

    @classmethod
    def create(cls, folder: Path, config: Config, checkpoint_every: int = 10) -> Run:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        lock, previous = lock_folder(folder)
        try:
            if (folder / "checkpoint.pt").exists() or ((folder / "metrics.csv").exists() and read_metrics(folder)):
                raise RunError(
                    f"{folder} already holds a run; continue it with 'pgdist resume {folder}' or choose another --out"
                )
            with disk_errors(folder, "starting the run", None):
                _write_atomically(folder / "config.yaml", config.to_yaml().encode())
                return cls(folder, config, checkpoint_every, "w", lock)
        except BaseException:
            _unlock(lock, previous)
            raise

    @classmethod
    def resume(cls, folder: Path, checkpoint_every: int = 10, checkpoint: Path | None = None) -> tuple[Run, dict]:
        """The run and its latest checkpoint (or ``checkpoint``); metrics rows written after it are dropped."""
        folder = Path(folder)
        _check_is_folder(folder)
        lock, previous = lock_folder(folder)
        try:
            config, state = load_checkpoint(folder, checkpoint)
            if state.get("finished"):
                raise RunError(
                    f"{folder} finished at iteration {state['version']}; train on with "
                    f"'pgdist train --config {folder / 'config.yaml'} --iterations N --out NEW_RUN'"
                )
            if "param_groups" not in (state.get("optimizer") or {}):
                raise RunError(
                    f"{folder}/checkpoint.pt holds no optimizer state this pgdist can continue (an older pgdist "
                    "saved Adam's in a format of its own); 'pgdist eval' and 'pgdist plot' still read the run"
                )
            with disk_errors(folder, "resuming the run", state["version"]):
                _keep_rows_up_to(folder, state["version"])
                return cls(folder, config, checkpoint_every, "a", lock, resumed_at=state["version"]), state
        except BaseException:
            _unlock(lock, previous)
            raise

    def on_iteration(self, learner, metrics: dict) -> None:
        with self.disk_errors(f"recording iteration {learner.version}"):
            self.record(metrics)
            self.save(learner, finished=metrics["stopped"] or learner.version >= self.config.iterations)

    @contextmanager
    def disk_errors(self, doing: str):
        """A disk that takes no more, as one RunError (``disk_errors``); closing the files after it stays quiet."""
        try:
            with disk_errors(self.folder, doing, self.saved):
                yield
        except RunError:
            self.disk_failed = True
            raise

    def record(self, metrics: dict) -> None:
        self.csv.writerow(metrics)
        self.csv_file.flush()
        self.jsonl.write(json.dumps(metrics) + "\n")
        self.jsonl.flush()
        if self.tensorboard is None:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(self.folder), purge_step=self.purge_step)
        for name, value in metrics.items():
            if name != "iteration" and value is not None:  # None: no noise scale yet (learner.py)
                self.tensorboard.add_scalar(name, value, metrics["iteration"])
        if time.monotonic() - self.curve_drawn > CURVE_EVERY_SECONDS:
            self.draw_curve()

    def save(self, learner, finished: bool = False) -> Path:
        """The latest checkpoint, and a kept copy every ``checkpoint_every`` iterations."""
        state = {**learner.state_dict(), "finished": finished}
        path = _save(state, self.folder / "checkpoint.pt")
        self.saved = learner.version
        if learner.version % self.checkpoint_every == 0:
            _save(state, self.folder / f"checkpoint-{learner.version:06d}.pt")
        return path

    def draw_curve(self) -> None:
        from pgdist.plot import plot_runs

        if not self.csv_file.closed:
            self.csv_file.flush()
        plot_runs([self.folder], self.folder / "curve.png")
        self.curve_drawn = time.monotonic()

    def close(self) -> None:
        """Close every file, draw the last curve, then let the folder go to another writer.

        After a disk error (said already), what closing the files meets on that disk goes unsaid.
        """
        failed = self.disk_failed
        try:
            with self.disk_errors("closing the run"):
                for file in (self.csv_file, self.jsonl, self.tensorboard):
                    try:
                        if file is not None:
                            file.close()
                    except OSError as error:
                        if not (failed and error.errno in DISK_ERRORS):
                            raise
                if not failed and read_metrics(self.folder):
                    self.draw_curve()
        finally:
            os.close(self.lock)


@contextmanager
def disk_errors(folder: Path, doing: str, saved: int | None):
    """A disk that takes no more (DISK_ERRORS) as one RunError: the folder, what was being done, the
    checkpoint kept (``saved``: its iteration, None if none yet) and what to do. A half-written
    file is never left as the latest (``_write_atomically``)."""
    try:
        yield
    except OSError as error:
        if error.errno not in DISK_ERRORS:
            raise
        if error.errno == errno.EIO:
            remedy = "check that disk"
        else:
            kept = sum(path.stat().st_size for path in folder.glob("checkpoint-[0-9]*.pt"))
            remedy = f"free space there (its kept checkpoint-NNNNNN.pt files take {kept / 1e6:.1f} MB)"
        if saved is None:
            then = f"no checkpoint was saved yet; {remedy}, then start the run again (another --out)"
        else:
            then = (f"kept {folder / 'checkpoint.pt'} (iteration {saved}) whole; {remedy}, then continue with "
                    f"'pgdist resume {folder}'")
        raise RunError(f"cannot write the run folder {folder} while {doing}: {DISK_ERRORS[error.errno]} "
                       f"({error.strerror}); {then}") from None


def lock_folder(folder: Path) -> tuple[int, bytes]:
    """Take the folder's lock and sign it with this PID and host, or say which process holds it.

    Returns the descriptor the lock goes with and the lock file's previous text. ``flock``
    belongs to the open file, so it ends when this process does (a crash or a SIGKILL
    included) and never passes to Ray's processes (Python opens files not inheritable).
    """
    try:
        lock = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise RunError(f"cannot write the run folder {folder} ({error.strerror}): pgdist writes its runs there") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(lock, 200, 0).decode(errors="replace").split()
        os.close(lock)
        who = f"PID {holder[0]} on {holder[1]}" if len(holder) == 2 else "another process"
        raise RunError(
            f"{folder} is being written by {who} (a pgdist train or resume); wait for it to end, "
            "or stop it and then 'pgdist resume' the run"
        ) from None
    previous = os.pread(lock, 200, 0)
    _write_lock(lock, f"{os.getpid()} {socket.gethostname()}\n".encode())
    return lock, previous


def _unlock(lock: int, previous: bytes) -> None:
    """Give the lock up after a refusal, leaving its text as it was: a refused command changes nothing."""
    _write_lock(lock, previous)
    os.close(lock)


def _write_lock(lock: int, text: bytes) -> None:
    """The lock's text (who holds it), for the message of a refused writer; on a full disk the lock holds without it."""
    try:
        os.ftruncate(lock, 0)
        os.pwrite(lock, text, 0)
    except OSError as error:
        if error.errno not in DISK_ERRORS:
            raise


def _check_is_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise RunError(f"{folder} is not a run folder (no such directory); pass the --out folder of a 'pgdist train'")


def load_checkpoint(folder: Path, path: Path | None = None) -> tuple[Config, dict]:
    """A run folder's Config and latest checkpoint (or ``path``), or a RunError saying what is wrong."""
    folder = Path(folder)
    _check_is_folder(folder)
    path = Path(path) if path is not None else folder / "checkpoint.pt"
    if not path.exists():
        if path.name != "checkpoint.pt":
            raise RunError(f"{path}: no such checkpoint; the run's are {folder}/checkpoint*.pt")
        raise RunError(f"{folder} has no checkpoint.pt: it is not a run folder, or its run saved nothing yet")
    try:
        return _read_checkpoint(path)
    except NOT_A_CHECKPOINT as error:
        first_line = (str(error).splitlines() or [""])[0][:120]
        raise RunError(
            f"{path} is corrupt or cut short ({type(error).__name__}: {first_line}); {_offer_previous(folder, path)}"
        ) from None


def _read_checkpoint(path: Path) -> tuple[Config, dict]:
    state = torch.load(path, weights_only=True)
    return Config(**state["config"]), state


def _offer_previous(folder: Path, broken: Path) -> str:
    """The newest kept checkpoint-NNNNNN.pt that loads, and the command that continues from it."""
    for path in sorted(folder.glob("checkpoint-[0-9]*.pt"), reverse=True):
        if path == broken:
            continue
        try:
            _, state = _read_checkpoint(path)
        except NOT_A_CHECKPOINT:
            continue
        return (
            f"the newest whole kept checkpoint is {path} (iteration {state['version']}): continue from it with "
            f"'pgdist resume {folder} --from {path}'"
        )
    return f"no kept checkpoint-NNNNNN.pt in {folder} loads either"


def load_run(folder: Path):
    """A run's Config and its trained policy, from the latest checkpoint."""
    config, policy, _ = load_run_and_spaces(folder)
    return config, policy


def load_run_and_spaces(folder: Path):
    """A run's Config, its trained policy and its env's spaces (``pgdist.envs.EnvSpaces``), the env built once."""
    from pgdist.envs import env_spaces
    from pgdist.normalization import normalized
    from pgdist.policy import make_policy

    config, state = load_checkpoint(folder)
    spaces = env_spaces(config.env)
    policy = make_policy(spaces.observation_shape, spaces.action_space, config.hidden, config.seed,
                         bound_actions=config.bound_actions)
    policy = normalized(policy, config, spaces.observation_size)  # its statistics are in the state
    policy.load_state_dict(state["policy"])
    return config, policy, spaces


def _save(state: dict, path: Path) -> Path:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    _write_atomically(path, buffer.getvalue())
    return path


def _write_atomically(path: Path, data: bytes) -> None:
    """Write a temporary file, fsync it, rename it over ``path``, fsync the folder.

    A reader sees the old file or the new one, and after a crash (of pgdist or of the
    machine) the disk holds one of them whole, never a mix.
    """
    partial = path.with_name(path.name + ".tmp")
    try:
        with open(partial, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)  # a full disk: the space back, and the old file stays the latest
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _keep_rows_up_to(folder: Path, iteration: int) -> None:
    """Drop the metrics rows after the checkpoint resumed from (and a row cut short by a crash)."""
    rows = [row for row in read_metrics(folder) if int(row["iteration"]) <= iteration]
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    _write_atomically(folder / "metrics.csv", table.getvalue().encode())
    lines = whole_lines((folder / "metrics.jsonl").read_text()).splitlines()
    kept = [line for line in lines if line and json.loads(line)["iteration"] <= iteration]
    _write_atomically(folder / "metrics.jsonl", "".join(line + "\n" for line in kept).encode())
