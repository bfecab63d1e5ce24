"""Training: the ``PoolingModule`` (LightningModule), its losses, objectives and metrics, the optimiser
and schedule, LoRA adapters, length-sorted backbone chunks, the one safe checkpoint reader, exact
resume, and the checks that refuse runs which could only give wrong figures."""
