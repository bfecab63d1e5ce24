"""Run an export's ONNX graph (:mod:`poolhead.export.onnx`) with onnxruntime or OpenVINO, without torch.

``poolhead.load(path, backend="onnx")`` / ``backend="openvino"`` return an :class:`OnnxEncoder`:
the export's own tokenizer, then the one graph that holds backbone, pooling and Normalize.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from poolhead.errors import UserFileNotFoundError, UserValueError

BACKENDS = ("torch", "onnx", "openvino")
#: Where an export keeps its ONNX graph's config (which names the graph file): the reader owns the
#: layout, and :mod:`poolhead.export.onnx` writes to it.
ONNX_FOLDER = "onnx"
CONFIG_FILE = "poolhead_onnx.json"


class OnnxEncoder:
    """Texts -> sentence embeddings with the ONNX graph of an export.

    Args:
        folder: the export; it must hold ``onnx/`` (``poolhead export --onnx`` or
            ``poolhead.export.onnx.export_onnx(folder)`` writes it).
        backend: "onnx" (onnxruntime) or "openvino".
        threads: intra-op threads; default the runtime's choice (all cores).
        provider: onnxruntime execution provider (default CPUExecutionProvider); or the
            OpenVINO device (default "CPU").
    """

    def __init__(self, folder: str | Path, backend: str = "onnx", *, threads: int | None = None,
                 provider: str | None = None) -> None:  # fmt: skip
        from transformers import AutoTokenizer

        self.folder = Path(folder)
        self.backend = backend
        self.config, graph_path = read_onnx_config(self.folder)
        self.max_seq_length = self.config.get("max_seq_length")
        check_graph_max_seq_length(self.folder, self.max_seq_length)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
        if backend == "onnx":
            self._run = run_with_onnxruntime(graph_path, threads, provider)
        elif backend == "openvino":
            self._run = run_with_openvino(graph_path, threads, provider)
        else:
            raise UserValueError(f"backend {backend!r} is not one OnnxEncoder runs; choose 'onnx' or 'openvino'")

    def get_embedding_dimension(self) -> int:
        return int(self.config["embedding_dimension"])

    def encode(self, texts: str | list[str], batch_size: int = 32, show_progress_bar: bool | None = None) -> np.ndarray:
        """Embeddings of ``texts`` as a (len(texts), dim) float32 array (one text: a (dim,) array).

        Texts are batched longest first, as sentence-transformers and poolhead's Encoder do, so
        little padding is computed.
        """
        import torch

        from poolhead.encoder import encode_in_length_order, encode_request, progress_bar_wanted

        texts, single = encode_request(texts, batch_size)
        if not texts:
            return np.zeros((0, self.get_embedding_dimension()), dtype=np.float32)

        def encode_batch(batch: list[str]) -> dict[str, torch.Tensor]:
            return {"embeddings": torch.from_numpy(np.asarray(self._run(self.tokenize(batch))))}

        show = progress_bar_wanted(len(texts), show_progress_bar)
        embeddings = encode_in_length_order(texts, encode_batch, batch_size, self.backend, show)["embeddings"].numpy()
        return embeddings[0] if single else embeddings

    def tokenize(self, texts: list[str]) -> dict[str, np.ndarray]:
        """What sentence-transformers' Transformer module gives the backbone: padded, truncated to max_seq_length."""
        features = self.tokenizer(
            texts, padding=True, truncation="longest_first", max_length=self.max_seq_length, return_tensors="np"
        )
        return {name: features[name].astype(np.int64) for name in self.config["inputs"]}


def read_onnx_config(folder: Path) -> tuple[dict[str, Any], Path]:
    """The graph's config and path, checked: both are files inside ``folder``."""
    config_path = folder / ONNX_FOLDER / CONFIG_FILE
    if not config_path.is_file():
        raise UserFileNotFoundError(
            f"{folder} has no {ONNX_FOLDER}/{CONFIG_FILE}, so it holds no ONNX graph: write one with "
            f"poolhead.export.onnx.export_onnx({str(folder)!r}) (or poolhead export CKPT OUT --onnx)"
        )
    config = json.loads(config_path.read_text(encoding="utf-8"))
    graph_path = (folder / ONNX_FOLDER / str(config.get("file", ""))).resolve()
    if folder.resolve() not in graph_path.parents or not graph_path.is_file():
        raise UserValueError(f"{config_path} names graph file {config.get('file')!r}, which is not a file inside "
                         f"{folder}; export the ONNX graph again")  # fmt: skip
    check_external_data(graph_path, folder)
    return config, graph_path


def check_graph_max_seq_length(folder: Path, max_seq_length: int | None) -> None:
    """Refuse a graph config whose max_seq_length the backbone cannot embed (onnxruntime fails on a long text)."""
    from transformers import AutoConfig

    from poolhead.backbone import check_max_seq_length, transformer_folder

    backbone_folder, _ = transformer_folder(str(folder))
    config = AutoConfig.from_pretrained(backbone_folder, local_files_only=True)
    check_max_seq_length(max_seq_length, config, folder / ONNX_FOLDER / CONFIG_FILE)


def check_external_data(graph_path: Path, folder: Path) -> None:
    """Refuse a graph whose weights live in files outside ``folder`` (ONNX external data is a path)."""
    import onnx
    from onnx.external_data_helper import _get_all_tensors

    graph = onnx.load(str(graph_path), load_external_data=False)
    for tensor in _get_all_tensors(graph):
        for entry in tensor.external_data:
            if entry.key == "location":
                target = (graph_path.parent / entry.value).resolve()
                if folder.resolve() not in target.parents:
                    raise UserValueError(f"{graph_path} reads weights from {entry.value!r}, outside {folder}; "
                                     f"refusing to load it: export the ONNX graph again")  # fmt: skip


def run_with_onnxruntime(graph_path: Path, threads: int | None, provider: str | None):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(graph_path), options, providers=[provider or "CPUExecutionProvider"])
    return lambda features: session.run(None, features)[0]


def run_with_openvino(graph_path: Path, threads: int | None, device: str | None):
    import openvino

    # f32: on CPUs with bf16 support OpenVINO's default precision is bf16, which misses 1e-4 agreement.
    settings: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
    if threads:
        settings["INFERENCE_NUM_THREADS"] = threads
    core = openvino.Core()
    compiled = core.compile_model(core.read_model(str(graph_path)), device or "CPU", settings)
    return lambda features: compiled(features)[0]


def load_backend(path: str | Path, backend: str, **options: Any) -> OnnxEncoder:
    if backend not in BACKENDS:
        raise UserValueError(f"backend {backend!r} is unknown; choose one of {', '.join(BACKENDS)}")
    try:
        return OnnxEncoder(path, backend, **options)
    except ModuleNotFoundError as error:
        extra = "openvino" if backend == "openvino" else "onnx"
        raise ModuleNotFoundError(
            f'backend="{backend}" needs {error.name}, which is not installed: pip install "poolhead[{extra}]"'
        ) from error
