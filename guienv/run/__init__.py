"""The application layer: the ``guienv`` CLI, the training loop, evaluation, reports and scoring.

Modules: :mod:`~guienv.run.cli` (the ``guienv`` command), :mod:`~guienv.run.train` (``guienv
train``; its config in :mod:`~guienv.run.train_config`, tasks in :mod:`~guienv.run.train_data`,
model and optimizer in :mod:`~guienv.run.train_model`, :mod:`~guienv.run.checkpoints`,
:mod:`~guienv.run.metrics`, :mod:`~guienv.run.distributed`), :mod:`~guienv.run.evaluate` (``guienv
eval``), :mod:`~guienv.run.report` (``report.html``) and :mod:`~guienv.run.score` (``guienv score``).
"""

from guienv.run.cli import main
from guienv.run.evaluate import EvalConfig, rebuild_report, run_eval
from guienv.run.report import write_report
from guienv.run.score import score_main
from guienv.run.train import train
from guienv.run.train_config import TrainConfig

__all__ = ["EvalConfig", "TrainConfig", "main", "rebuild_report", "run_eval", "score_main", "train", "write_report"]
