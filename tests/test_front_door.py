"""What a person meets first: ``poolhead`` and its help, and training figures on compare's scale."""

from __future__ import annotations

import pytest
import torch

from poolhead.cli import main
from poolhead.training.metrics import PairMetrics

COMMANDS = ["fit", "validate", "test", "export", "compare", "inspect", "push", "predict"]


@pytest.mark.parametrize("args", [["--help"], ["-h"], []], ids=["--help", "-h", "bare"])
def test_help_lists_every_command_on_one_line_and_warns_nothing(args, monkeypatch, capsys, recwarn):
    monkeypatch.setattr("sys.argv", ["poolhead", *args])

    code = main()

    out = capsys.readouterr().out
    assert code == (2 if not args else 0)
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("  ")]
    assert listed == COMMANDS
    assert not list(recwarn)


def test_a_lightning_command_from_the_shell_warns_nothing(monkeypatch, capsys, recwarn):
    monkeypatch.setattr("sys.argv", ["poolhead", "fit", "--help"])

    with pytest.raises(SystemExit) as exit_info:
        main()

    assert exit_info.value.code == 0 and "--trainer.max_epochs" in capsys.readouterr().out
    assert not [w for w in recwarn if "args parameter" in str(w.message)]


def test_training_logs_accuracy_and_f1_x100_like_compare(tiny_model_dir):
    from poolhead.training.module import PoolingModule

    model = PoolingModule(tiny_model_dir, pooler="mean", loss="pair_classification")
    logged = {}
    model.log = lambda name, value, **kwargs: logged.setdefault(name, float(value))
    metrics = PairMetrics("label", num_labels=2)
    metrics.update(torch.tensor([1, 0, 1, 1]), torch.tensor([1, 0, 0, 1]), torch.arange(4))

    model._log_metrics("val", metrics)

    assert logged == {"val/accuracy": pytest.approx(75.0), "val/f1": pytest.approx(80.0)}
