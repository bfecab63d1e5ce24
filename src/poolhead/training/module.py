"""PoolingModule: the LightningModule that trains a pooling head (and optionally the backbone) on pairs."""

from __future__ import annotations

import io
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from poolhead.backbone import load_backbone
from poolhead.cache import LAST, build_feature_cache
from poolhead.errors import UserValueError
from poolhead.pooling.base import Pooler
from poolhead.pooling.registry import resolve_pooler
from poolhead.training.checkpoints import checkpoint_bytes, load_checkpoint_bytes, model_options, use_safe_checkpoint_io
from poolhead.training.checks import (
    check_poolhead_checkpoint,
    check_training_options,
    check_training_pairs,
    follow_data_kind,
)
from poolhead.training.chunks import length_chunks
from poolhead.training.finite import StopOnNonFinite
from poolhead.training.lora import add_adapters, is_adapter_key
from poolhead.training.losses import build_loss, check_loss_matches_data
from poolhead.training.metrics import PairMetrics
from poolhead.training.objectives import (
    COMBINED,
    Objective,
    build_dataset_losses,
    combined_metric,
    plan_objectives,
)
from poolhead.training.optimisation import configure_optimization
from poolhead.training.resume import STEP_SEED_KEY, step_random_state, step_seed

BACKBONE_PREFIX = "backbone_model."


class PoolingModule(L.LightningModule):
    """Backbone + pooler + pair loss, optimised by Lightning.

    Args:
        backbone: hub id, HF folder or sentence-transformers folder of the encoder.
        pooler: a registered name (``attention``, ``mean``, ...), a pooler config dict, or a
            ``Pooler`` (``class_path``/``init_args`` in a config file).
        pooler_kwargs: options for a named pooler (e.g. ``{num_heads: 4}``).
        loss: ``cosent`` (scores), ``cosine_mse``, ``in_batch_negatives``, ``pair_classification`` (labels).
        loss_kwargs: options for the loss (e.g. ``{scale: 20}``).
        num_labels: classes for ``pair_classification``.
        freeze_backbone: keep the backbone fixed and in eval mode (only the head trains).
        max_length: tokens per text; default the backbone's own limit.
        normalize: the exported model L2-normalises its embeddings.
        lr: learning rate of the head (and the loss's own parameters).
        backbone_lr: learning rate of the backbone when it is not frozen.
        weight_decay: AdamW weight decay on matrices (not on biases, norms, layer logits).
        warmup_ratio: fraction of the steps with linear warmup; then linear decay to 0.
        label_threshold: cosine threshold that turns similarities into labels for label data
            when the loss has no classifier of its own.
        cache: with a frozen backbone, compute each unique sentence's token embeddings once
            (stored on disk, reused by later epochs and runs) instead of every epoch.
        cache_dir: where the feature cache lives (default ``$POOLHEAD_CACHE_DIR`` or
            ``~/.cache/poolhead/features``); must be shared by all nodes under multi-node DDP.
        forward_chunk_size: run the backbone over a batch's sentences (both sides together)
            sorted by length, this many at a time, each chunk padded only to its own longest
            sentence. Same batches, same loss, less padding computed (docs/results.md measures it
            on CPU). ``None`` runs each side as one forward pass, which keeps a GPU busier. Unused
            when the feature cache serves the batch.
        dataset_losses: the losses of a mixture's data sets (``data.datasets`` entries with a ``loss``),
            ``{name: {loss, loss_kwargs, num_labels}}``; filled in from the data at fit, so a
            checkpoint rebuilds them. Leave it unset.
        lora: fine-tune through LoRA adapters instead of every backbone weight (needs
            ``freeze_backbone: false``), e.g. ``{r: 8, alpha: 16, dropout: 0.05, target_modules: [query, value]}``:
            only the adapters (at ``backbone_lr``) and the head train, checkpoints hold only those.
            See poolhead.training.lora.
        gradient_checkpointing: recompute the backbone's activations in the backward pass instead
            of keeping them: less memory for a fine-tune (full or LoRA), more compute.
    """

    def __init__(
        self,
        backbone: str,
        # dict last: a checkpoint stores the resolved pooler config, and LightningCLI reloads
        # checkpoints through this signature, so the config dict must validate too.
        pooler: str | Pooler | dict[str, Any] = "attention",
        pooler_kwargs: dict[str, Any] | None = None,
        loss: str = "cosent",
        loss_kwargs: dict[str, Any] | None = None,
        num_labels: int = 2,
        freeze_backbone: bool = True,
        max_length: int | None = None,
        normalize: bool = False,
        lr: float = 1e-3,
        backbone_lr: float = 2e-5,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        label_threshold: float = 0.5,
        cache: bool = True,
        cache_dir: str | None = None,
        forward_chunk_size: int | None = None,
        dataset_losses: dict[str, dict[str, Any]] | None = None,
        lora: dict[str, Any] | None = None,
        gradient_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        check_training_options(lr=lr, backbone_lr=backbone_lr, weight_decay=weight_decay, warmup_ratio=warmup_ratio)
        self.backbone = load_backbone(backbone, max_length=max_length)
        self.backbone_model = self.backbone.model
        self.pooler = resolve_pooler(pooler, self.backbone.hidden_size, **(pooler_kwargs or {}))
        self.loss = build_loss(loss, embedding_dim=self.pooler.output_dim, num_labels=num_labels, **(loss_kwargs or {}))
        self.dataset_losses = build_dataset_losses(dataset_losses, self.pooler.output_dim)
        self.freeze_backbone = freeze_backbone
        self.normalize = normalize
        if forward_chunk_size is not None and forward_chunk_size < 1:
            raise UserValueError(
                f"forward_chunk_size must be a positive number of sentences or None, got {forward_chunk_size}"
            )
        self.forward_chunk_size = forward_chunk_size
        self.backbone_model.requires_grad_(not freeze_backbone)
        self.backbone_fingerprint = None
        if gradient_checkpointing:
            enable_activation_checkpointing(self.backbone_model)
        if lora is not None:
            self._add_lora(lora)
        # Store the resolved pooler config, not the object: a checkpoint alone rebuilds the model.
        self.save_hyperparameters(ignore=["pooler", "pooler_kwargs"])
        self.hparams["pooler"] = self.pooler.get_config()
        # The config above already holds the options: `validate/test --ckpt_path` lays these hparams over
        # the run's config, and leftover pooler_kwargs would then be applied to a config dict (an error).
        self.hparams["pooler_kwargs"] = None
        self.hparams["max_length"] = self.backbone.max_length
        #: set by the feature cache when the backbone is frozen (see poolhead.cache)
        self.feature_cache = None
        #: one per data set of the fit (see poolhead.training.objectives), set in setup
        self.objectives: list[Objective] = []

    def _add_lora(self, lora: dict[str, Any]) -> None:
        if self.freeze_backbone:
            raise UserValueError("lora trains adapters inside the backbone; set freeze_backbone: false with it")
        # Fingerprint the published weights before the adapters wrap them: the checkpoint names them.
        self.backbone_fingerprint = self.backbone.fingerprint()
        self.backbone_model = self.backbone.model = add_adapters(self.backbone_model, lora)

    # --- lifecycle -------------------------------------------------------------------------

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if self._trainer is not None:
            use_safe_checkpoint_io(self.trainer)  # before Lightning reads a --ckpt_path checkpoint
        if stage == "fit":
            check_training_pairs(datamodule)
        sources = getattr(datamodule, "sources", None)
        if sources and all(source.kind for source in sources):
            self.objectives = plan_objectives(self, sources, self.hparams.num_labels)
        else:  # no data module (loaders passed to the trainer): the loss says what the data holds
            kind = getattr(datamodule, "label_kind", None) or _kind_of_loss(self.loss)
            check_loss_matches_data(self.loss, kind, getattr(datamodule, "path", None))
            self.objectives = [Objective(None, kind, self.loss, num_labels=self.hparams.num_labels)]
        self.kind = self.objectives[0].kind
        if stage == "fit" and self._trainer is not None:
            follow_data_kind(self.trainer, self.objectives)
        sentences = getattr(datamodule, "sentences", None)
        if self.hparams.cache and self.freeze_backbone and sentences:
            self.attach_feature_cache(sentences)
        #: stage -> one PairMetrics per data set
        self.stage_metrics = torch.nn.ModuleDict(
            {stage: torch.nn.ModuleList([o.new_metrics() for o in self.objectives]) for stage in ("val", "test")}
        )
        if stage == "fit":
            # Lightning keeps the modes modules have when fit begins (restoring them after every
            # validation), and from_pretrained leaves the backbone in eval mode: a backbone being
            # fine-tuned must train with its dropout on. Set here, before Lightning's "modules in
            # eval mode at the start of training" check.
            self.train()

    def attach_feature_cache(self, sentences: list[str]) -> None:
        """Serve this run's sentences from the feature cache (each DDP process encodes its share)."""
        num_hidden_states = self.backbone.num_hidden_states
        layers = self.pooler.layer_indices(num_hidden_states) if self.pooler.needs_hidden_states else [LAST]
        strategy = self.trainer.strategy
        self.feature_cache = build_feature_cache(
            self.backbone,
            sentences,
            layers,
            cache_dir=self.hparams.cache_dir,
            device=strategy.root_device,
            rank=self.trainer.global_rank,
            world_size=self.trainer.world_size,
            barrier=strategy.barrier,
            show_progress_bar=self.trainer.progress_bar_callback is not None,
        )
        stats = self.feature_cache.stats
        rank_zero_info(
            f"feature cache: {stats.sentences} unique sentences, {stats.hit_rate:.0%} reused from disk, "
            f"{stats.encoded_here} encoded by this process, {stats.bytes / 2**20:.1f} MiB, {stats.seconds:.1f} s"
        )

    def configure_callbacks(self) -> list[L.Callback]:
        # Lightning has no trainer option that stops on a NaN training loss (only on monitored metrics).
        return [StopOnNonFinite()]

    def on_train_start(self) -> None:
        if self.feature_cache is not None and self.logger is not None:
            stats = self.feature_cache.stats
            self.logger.log_metrics(
                {
                    "cache/hit_rate": stats.hit_rate,
                    "cache/size_mib": stats.bytes / 2**20,
                    "cache/seconds": stats.seconds,
                }
            )

    def train(self, mode: bool = True) -> PoolingModule:
        super().train(mode)
        if self.freeze_backbone:
            # A frozen backbone stays in eval mode: no dropout, so its features are
            # deterministic (and cacheable) and match what users get at inference.
            self.backbone_model.eval()
        return self

    # --- forward ---------------------------------------------------------------------------

    def backbone_forward(self, features: dict[str, Tensor]) -> tuple[Tensor, Tensor, Any]:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_backbone):
            outputs = self.backbone_model(**features, output_hidden_states=self.pooler.needs_hidden_states)
        return outputs.last_hidden_state, features["attention_mask"], outputs.hidden_states

    def forward(self, features: dict[str, Tensor], sentence_ids: Tensor | None = None) -> Tensor:
        """(B, D) sentence embeddings of tokenized texts (from the cache when one is attached)."""
        if self.feature_cache is not None and sentence_ids is not None:
            tokens, mask, hidden_states = self.feature_cache.lookup(sentence_ids, device=self.device)
        else:
            tokens, mask, hidden_states = self.backbone_forward(features)
        embeddings = self.pooler(tokens, mask, hidden_states=hidden_states)
        return F.normalize(embeddings, dim=-1) if self.normalize else embeddings

    def embed_pairs(self, batch: dict[str, Any]) -> list[Tensor]:
        """Embeddings of a batch's sides: ``[a, b, negative_1, ..., negative_k]``."""
        sides = [batch["features_a"], batch["features_b"], *batch.get("features_negatives", [])]
        ids = [batch.get("sentence_ids_a"), batch.get("sentence_ids_b"), *batch.get("sentence_ids_negatives", [])]
        if self.forward_chunk_size and self.feature_cache is None:
            chunks = length_chunks(sides, self.forward_chunk_size)
            if chunks is not None:
                rows = torch.cat([chunk_rows for chunk_rows, _ in chunks])
                embeddings = torch.cat([self(features) for _, features in chunks])[torch.argsort(rows)]
                return list(embeddings.split(sides[0]["attention_mask"].shape[0]))
        return [self(features, sentence_ids) for features, sentence_ids in zip(sides, ids, strict=True)]

    # --- steps -----------------------------------------------------------------------------

    def _objective(self, batch: dict[str, Any]) -> tuple[int, Objective]:
        index = int(batch["dataset"]) if "dataset" in batch and len(self.objectives) > 1 else 0
        return index, self.objectives[index]

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        _, objective = self._objective(batch)
        with step_random_state(self):  # dropout draws depend on the step only: resumed runs draw alike
            a, b, *negatives = self.embed_pairs(batch)
            loss = objective.compute_loss(a, b, batch["labels"], negatives)
        penalty = self.pooler.training_penalty()  # e.g. an attention head's pull towards uniform weights
        if penalty is not None:
            self.log("train/penalty", penalty, batch_size=a.shape[0])
            loss = loss + penalty
        self.log("train/loss", loss, prog_bar=True, batch_size=a.shape[0])
        if objective.name:
            self.log(objective.logged("train", "loss"), loss, batch_size=a.shape[0])
        return loss

    def _eval_step(self, batch: dict[str, Any], stage: str, metrics: torch.nn.ModuleList) -> None:
        index, objective = self._objective(batch)
        a, b, *negatives = self.embed_pairs(batch)
        loss = objective.compute_loss(a, b, batch["labels"], negatives)
        name = objective.logged(stage, "loss")
        self.log(name, loss, batch_size=a.shape[0], sync_dist=True, add_dataloader_idx=False)
        if objective.has_metrics:
            metrics[index].update(self.predict_pairs(a, b, negatives, objective), batch["labels"], batch["pair_ids"])

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch, "val", self.stage_metrics["val"])

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch, "test", self.stage_metrics["test"])

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val", self.stage_metrics["val"])

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test", self.stage_metrics["test"])

    @property
    def val_metrics(self) -> PairMetrics:
        """Validation metrics of the (first) data set."""
        return self.stage_metrics["val"][0]

    def predict_pairs(
        self, a: Tensor, b: Tensor, negatives: list[Tensor] | None = None, objective: Objective | None = None
    ) -> Tensor:
        """Cosine similarity for score data; predicted class for label data; for tuples, 1 where the
        anchor is closer to its positive than to every negative."""
        objective = objective or self.objectives[0]
        cosines = F.cosine_similarity(a.float(), b.float(), dim=-1)
        if objective.kind == "score":
            return cosines
        if objective.kind == "positive":
            closest_negative = torch.stack([F.cosine_similarity(a.float(), n.float(), dim=-1) for n in negatives])
            return (cosines > closest_negative.max(dim=0).values).long()
        if hasattr(objective.loss, "predict"):
            return objective.loss.predict(a, b).argmax(dim=-1)
        return (cosines >= self.hparams.label_threshold).long()

    def _log_metrics(self, stage: str, metrics: torch.nn.ModuleList | PairMetrics) -> None:
        """Log each data set's metrics (one ``PairMetrics`` or one per data set) and, for several, the combined one."""
        # compute() already gathers every process's pairs, so no sync_dist here.
        metrics = [metrics] if isinstance(metrics, PairMetrics) else list(metrics)
        objectives = self.objectives or [Objective(None, metrics[0].kind, self.loss)]
        computed = []
        for objective, metric in zip(objectives, metrics, strict=True):
            values = metric.compute() if objective.has_metrics and metric.update_count else {}
            for name, value in values.items():
                # x100, as compare reports them
                self.log(objective.logged(stage, name), value * 100, prog_bar=objective.name is None)
            computed.append(values)
            metric.reset()
        combined = combined_metric(objectives, computed)
        if combined is not None:
            self.log(f"{stage}/{COMBINED}", combined, prog_bar=True)

    # --- optimisation ----------------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, Any]:
        return configure_optimization(self, BACKBONE_PREFIX)

    # --- checkpoints -----------------------------------------------------------------------

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Any, *args: Any, weights_only: bool | None = None, **kwargs: Any):
        """Lightning's loader, reading with weights_only=True whatever is passed (or set in the environment).

        Keyword arguments override the saved hyperparameters, e.g. ``backbone=`` for a backbone folder
        that moved (its weights fingerprint is still checked).
        """
        checkpoint = load_checkpoint_bytes(checkpoint_bytes(checkpoint_path), checkpoint_path)
        check_poolhead_checkpoint(checkpoint, checkpoint_path)
        # Lightning would import the _instantiator / _class_path a file names: hand it plain options only.
        checkpoint["hyper_parameters"] = model_options(checkpoint, checkpoint_path)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        buffer.seek(0)
        return super().load_from_checkpoint(buffer, *args, weights_only=True, **kwargs)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[STEP_SEED_KEY] = step_seed(self)
        if not self.freeze_backbone and self.hparams.lora is None:
            return
        # A frozen backbone is the published one: store its fingerprint, not 100s of MB of copies
        # (under LoRA, its adapters only).
        state = checkpoint["state_dict"]
        for key in [k for k in state if k.startswith(BACKBONE_PREFIX) and not is_adapter_key(k)]:
            del state[key]
        checkpoint["backbone_fingerprint"] = self.backbone_fingerprint or self.backbone.fingerprint()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._step_seed = checkpoint.get(STEP_SEED_KEY)
        expected = checkpoint.get("backbone_fingerprint")
        if expected is None:
            return
        actual = self.backbone_fingerprint or self.backbone.fingerprint()
        if actual != expected:
            raise UserValueError(
                f"the checkpoint's backbone weights have fingerprint {expected[:12]}, but backbone "
                f"{self.hparams.backbone!r} loads with fingerprint {actual[:12]}: point --model.backbone "
                f"(--backbone for poolhead export) at the exact weights used for training"
            )
        state = checkpoint["state_dict"]
        for key, value in self.backbone_model.state_dict().items():
            state.setdefault(BACKBONE_PREFIX + key, value)


def _kind_of_loss(loss: torch.nn.Module) -> str:
    kind = getattr(loss, "label_kind", "score")
    return "score" if kind == "any" else kind


def enable_activation_checkpointing(model: torch.nn.Module) -> None:
    """Recompute ``model``'s activations in the backward pass, under the name this transformers offers."""
    # Not reentrant: with frozen embeddings the reentrant variant would drop the adapters' gradients.
    options = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers 5 (the old name warns there)
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=options)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=options)
