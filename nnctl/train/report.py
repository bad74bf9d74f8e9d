"""Progress output on stderr: a tqdm bar per epoch on a terminal, one line per epoch
otherwise, nothing with ``quiet`` but warnings. Standard output stays free for ``--json``."""

from __future__ import annotations

import sys

from tqdm import tqdm


def format_row(row: dict, epochs: int) -> str:
    """``epoch 3/30  loss 0.1234  acc 0.9650  val_loss ...  1.2s  5300 samples/s``."""
    parts = [f"epoch {row['epoch']}/{epochs}", f"lr {row['lr']:.3g}"]
    for key, label in (("train_loss", "loss"), ("train_accuracy", "acc"),
                       ("val_loss", "val_loss"), ("val_accuracy", "val_acc")):  # fmt: skip
        if row.get(key) is not None:
            parts.append(f"{label} {row[key]:.4f}")
    parts.append(f"{row['seconds']:.1f}s")
    if row.get("samples_per_s"):
        parts.append(f"{row['samples_per_s']:.0f} samples/s")
    return "  ".join(parts)


class Reporter:
    """Receives the trainer's events and shows them."""

    def __init__(self, epochs: int, quiet: bool = False, bar: bool | None = None, stream=None):
        self.epochs, self.quiet = epochs, quiet
        self.stream = stream or sys.stderr
        self.use_bar = (not quiet) and (self.stream.isatty() if bar is None else bar)
        self.bar = None

    def start_epoch(self, epoch: int, total_batches: int, done: int) -> None:
        if self.use_bar:
            self.bar = tqdm(total=total_batches, initial=done, desc=f"epoch {epoch}/{self.epochs}",
                            file=self.stream, leave=False, unit="batch", dynamic_ncols=True)  # fmt: skip

    def batch(self, progress, batch_len: int) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        if progress.batch_in_epoch % 10 == 0:
            seen = max(progress.seen, 1)
            postfix = {"loss": f"{progress.loss_sum / seen:.4f}"}
            if progress.correct:
                postfix["acc"] = f"{progress.correct / seen:.4f}"
            if progress.seconds > 0:
                postfix["samples/s"] = f"{progress.seen / progress.seconds:.0f}"
            self.bar.set_postfix(postfix, refresh=False)

    def end_epoch(self, row: dict) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if not self.quiet:
            print(format_row(row, self.epochs), file=self.stream, flush=True)

    def message(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def warning(self, text: str) -> None:
        """Something the user should know (a repaired file): shown even when quiet."""
        print(f"warning: {text}", file=self.stream, flush=True)
