"""Options and evaluation sets that would give a crash late, or figures that mean nothing, refused first."""

from __future__ import annotations

import torch

from poolhead.errors import UserValueError

#: below this many test pairs, correlations and bootstrap intervals say nothing (and plots break)
MIN_TEST_PAIRS = 10


def check_device(device: str | torch.device | None) -> None:
    """Refuse a CUDA device on a machine without one, before any model is loaded."""
    if device is None:
        return
    try:
        device = torch.device(device)
    except RuntimeError as error:
        raise UserValueError(f"unknown device {str(device)!r} ({error}); use cpu, cuda or cuda:N") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserValueError(f"device {str(device)!r} was asked for but CUDA is not available here; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserValueError(
            f"device {str(device)!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)"
        )


def check_compare_options(batch_size: int, resamples: int, confidence: float, limit: int | None) -> None:
    if batch_size < 1:
        raise UserValueError(f"batch size must be at least 1 text, got {batch_size}; e.g. --batch-size 32")
    if resamples < 1:
        raise UserValueError(f"resamples must be at least 1, got {resamples}; 1000 is the usual choice")
    if not 0 < confidence < 1:
        raise UserValueError(f"confidence must lie strictly between 0 and 1, got {confidence}; e.g. 0.95")
    if limit is not None and limit < MIN_TEST_PAIRS:
        raise UserValueError(f"--limit {limit} keeps too few pairs; use at least {MIN_TEST_PAIRS}")


def check_evaluation_set(name: str, kind: str, targets: list[float] | object) -> None:
    """Refuse test pairs too few to score, and label data of one class (accuracy would read 100.00 [100, 100])."""
    values = [float(v) for v in targets]
    if len(values) < MIN_TEST_PAIRS:
        raise UserValueError(
            f"{name} has {len(values)} test pair(s); a comparison needs at least {MIN_TEST_PAIRS} for its "
            f"correlations and bootstrap intervals to mean anything"
        )
    classes = sorted(set(values))
    if kind == "label" and len(classes) < 2:
        raise UserValueError(
            f"{name}: every test pair has label {int(classes[0])}, so accuracy and F1 cannot tell models apart "
            f"(a constant guess scores 100); evaluate on pairs of both classes"
        )
    if kind == "score" and len(classes) < 2:
        raise UserValueError(
            f"{name}: every test pair has score {classes[0]:g}, so no correlation can be computed; "
            f"evaluate on pairs with different scores"
        )
