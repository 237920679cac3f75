"""What the trainer optimises and reports, chosen by the dataset (``DatasetMeta.task``, ``DataSpec.task``).

    task = get_task(data.meta.task)
    loss = task.loss(outputs, targets)               # the training objective of a batch (mean)
    loss_sum, metric_sum = task.sums(outputs, targets)   # summed over the samples of a batch (evaluation)

* ``classification``: cross-entropy; metric ``accuracy`` (higher is better); optional top-5.
* ``regression`` (the adding problem): mean squared error, which is also the metric ``mse`` (lower is better);
  outputs ``[B, 1]`` against targets ``[B]``.
* ``per_step_classification`` (copy memory): cross-entropy and accuracy over every time step, outputs
  ``[B, classes, L]`` against targets ``[B, L]``; a sample's loss and accuracy are its means over the steps.

Names in ``metrics.jsonl`` and ``summary.json`` follow the metric: ``accuracy_val`` / ``best_val_accuracy`` /
``test_accuracy`` for the classifications, ``mse_val`` / ``best_val_mse`` / ``test_mse`` for the regression. Model
selection, early stopping and the plateau schedule use :meth:`Task.score` (higher is better for every task).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from datasets import CLASSIFICATION, PER_STEP_CLASSIFICATION, REGRESSION


@dataclass(frozen=True)
class Task:
    name: str
    metric: str               # "accuracy" | "mse": the key of evaluation results and summaries
    label: str                # how the one-line epoch log names the metric
    higher_is_better: bool
    per_step_outputs: bool = False  # the network outputs at every time step
    has_top5: bool = False

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The batch's mean loss (float32 outputs)."""
        if self.name == REGRESSION:
            return F.mse_loss(outputs.reshape(targets.shape), targets.float())
        return F.cross_entropy(outputs, targets)  # [B, C] or [B, C, L] against [B] or [B, L]

    def sums(self, outputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, metric) summed over the samples of the batch; per-step tasks average over the steps first."""
        if self.name == REGRESSION:  # the loss is the metric
            squared_errors = self.metric_sum(outputs, targets)
            return squared_errors, squared_errors
        if self.per_step_outputs:
            losses = F.cross_entropy(outputs, targets, reduction="none")  # [B, L]
            return losses.mean(dim=1).sum(), self.metric_sum(outputs, targets)
        return F.cross_entropy(outputs, targets, reduction="sum"), self.metric_sum(outputs, targets)

    def metric_sum(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The metric summed over the samples of the batch (the training accuracy / error)."""
        if self.name == REGRESSION:
            error = (outputs.detach().reshape(targets.shape) - targets.float()) ** 2
            return error.reshape(error.shape[0], -1).mean(dim=1).sum()
        correct = (outputs.argmax(dim=1) == targets)
        return correct.float().mean(dim=1).sum() if self.per_step_outputs else correct.sum()

    def score(self, metric: float) -> float:
        """``metric`` as a number where higher is better (the accuracy; minus the error)."""
        return metric if self.higher_is_better else -metric


TASKS = {
    CLASSIFICATION: Task(CLASSIFICATION, "accuracy", "acc", True, has_top5=True),
    REGRESSION: Task(REGRESSION, "mse", "mse", False),
    PER_STEP_CLASSIFICATION: Task(PER_STEP_CLASSIFICATION, "accuracy", "acc", True, per_step_outputs=True),
}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; allowed: {', '.join(TASKS)}") from None
