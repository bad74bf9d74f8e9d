"""``tensorboard``: TensorBoard event files under ``RUN_DIR/tensorboard/`` (tensorboardX).

Each session (the first, and every resume) writes a new event file. A resumed session
starts with TensorBoard's restart marker at the restored step + 1, so whatever the stopped
session logged after its last checkpoint is dropped from TensorBoard's view and each step
appears once (an exact resume logs the very same values again). Event files sort by name;
the session number at the end of the name keeps two sessions started within one second in
order (tensorboardX names files by the second and would overwrite the earlier one).
"""

from __future__ import annotations

from nnctl import layout
from nnctl.core.checks import positive_int
from nnctl.errors import LoggerError
from nnctl.loggers import LOGGERS, Logger, RunInfo, require

EXTRA = "tensorboard"
#: Epoch columns of metrics.jsonl that become scalars (``epoch/<column>``).
EPOCH_SCALARS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr")


@LOGGERS.register("tensorboard")
class TensorBoardLogger(Logger):
    """TensorBoard event files in RUN_DIR/tensorboard/ (needs pip install 'nnctl[tensorboard]'):
    `epoch/train_loss`, `epoch/train_accuracy`, `epoch/val_loss`, `epoch/val_accuracy` and
    `epoch/lr` each epoch, `step/train_loss` and `step/lr` every `log_every` training
    steps, all against the training step, and the resolved config as text
    (`config/text_summary`). `tensorboard --logdir runs` shows every run below runs/.
    """

    def __init__(self, log_every: int = 50):
        self.log_every = positive_int("log_every", log_every)
        self.writer = None

    def get_config(self) -> dict:
        return {"type": self.type_name, "log_every": self.log_every}

    def prepare(self) -> None:
        require("tensorboardX", EXTRA, "tensorboard")

    def start(self, run: RunInfo) -> None:
        import yaml
        from tensorboardX import SummaryWriter

        folder = run.run_dir / layout.TENSORBOARD_DIR
        earlier = sorted(folder.glob("*tfevents*")) if folder.is_dir() else []
        try:
            self.writer = SummaryWriter(
                str(folder),
                purge_step=run.step + 1 if earlier else None,
                filename_suffix=f".{len(earlier) + 1:04d}",
            )
            if not earlier:
                text = yaml.safe_dump(run.config, sort_keys=False)
                # indented: TensorBoard renders the text as Markdown, this as a code block
                self.writer.add_text("config", "    " + text.replace("\n", "\n    "), 0)
        except OSError as error:
            raise LoggerError(f"tensorboard: cannot write {folder} ({error})") from None

    def log_step(self, step: int, values: dict) -> None:
        for key, value in values.items():
            if value is not None:
                self._scalar(f"step/{key}", value, step)

    def log_epoch(self, row: dict) -> None:
        for key in EPOCH_SCALARS:
            if row.get(key) is not None:
                self._scalar(f"epoch/{key}", row[key], row["step"])
        self._call(self.writer.flush)

    def finish(self, status: str, summary: dict | None) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            self._call(writer.close)

    def _scalar(self, tag: str, value: float, step: int) -> None:
        self._call(self.writer.add_scalar, tag, float(value), step)

    @staticmethod
    def _call(function, *args) -> None:
        try:
            function(*args)
        except OSError as error:
            raise LoggerError(f"tensorboard: {error}") from None
