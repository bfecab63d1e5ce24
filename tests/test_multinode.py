"""Multi-node, run: ``fit`` and ``predict`` as two "nodes" of one process each on this machine (gloo).

Each node is started on its own, as torchrun or SLURM would start it on its machine: Lightning's
``MASTER_ADDR``, ``MASTER_PORT``, ``NODE_RANK`` and ``WORLD_SIZE``, with ``num_nodes=2, devices=1``.
The two processes must see different shards of the work; predict's output has every id once, and
fit's two processes end with equal weights.

Run as a script, this file is one node's job (``python tests/test_multinode.py fit|predict ARGS``).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

NUM_NODES = 2
TRAIN_PAIRS = 40
NUM_TEXTS = 30
SHARD_SIZE = 4  # 8 shards: the unit of work a node takes
TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_nodes(job: str, args: list[str], out: Path, env: dict[str, str] | None = None) -> list[dict]:
    """Start every node's process at once, each with its rank environment; each node's ``node<r>.json``."""
    port = str(free_port())
    processes = []
    for node in range(NUM_NODES):
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        environment.pop("LOCAL_RANK", None)  # set, Lightning would take the processes as started by a launcher
        environment.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port, NODE_RANK=str(node), WORLD_SIZE=str(NUM_NODES))
        command = [sys.executable, str(Path(__file__).resolve()), job, *args]
        processes.append(subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    try:
        outputs = [process.communicate(timeout=TIMEOUT_S)[0].decode(errors="replace") for process in processes]
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
        pytest.fail(f"the {job} nodes did not finish in {TIMEOUT_S} s (one waits in a collective?)")
    for node, (process, output) in enumerate(zip(processes, outputs, strict=True)):
        assert process.returncode == 0, f"node {node}:\n{output[-5000:]}"
    return [json.loads((out / f"node{r}.json").read_text(encoding="utf-8")) for r in range(NUM_NODES)]


def record(out: str, rank: int, result: dict) -> None:
    with open(os.path.join(out, f"node{rank}.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle)


def fit_node(tiny_model: str, data_dir: str, out: str) -> None:
    """One node of a fit: which training pairs it saw, and a hash of its weights at the end."""
    import lightning as L
    import torch
    from quiet_fit import quiet_trainer

    from poolhead.data import SentencePairDataModule
    from poolhead.training.module import PoolingModule

    torch.set_num_threads(1)
    L.seed_everything(0, verbose=False)
    seen: list[int] = []

    class SeenPairs(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            seen.extend(batch["pair_ids"].tolist())

    model = PoolingModule(tiny_model, pooler="attention", loss="cosent", lr=0.01)
    data = SentencePairDataModule(
        os.path.join(data_dir, "stsb"), tokenizer=tiny_model, batch_size=8, limit_train_pairs=TRAIN_PAIRS,
        validation_split=None, seed=0,
    )  # fmt: skip
    trainer = quiet_trainer(num_nodes=NUM_NODES, strategy="ddp", max_epochs=1, callbacks=[SeenPairs()])
    trainer.fit(model, data)
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().numpy().tobytes())
    record(out, trainer.global_rank, {"world_size": trainer.world_size, "seen": seen, "weights": digest.hexdigest()})


def predict_node(model: str, corpus: str, out: str) -> None:
    """One node of ``poolhead predict --num-nodes 2 --devices 1``: which shard files it wrote."""
    from poolhead.cli import main
    from poolhead.corpus import writer

    written: list[int] = []
    write_shard = writer.EmbeddingShardWriter.write_shard

    def recording(self, shard, parts):
        written.append(shard)
        return write_shard(self, shard, parts)

    writer.EmbeddingShardWriter.write_shard = recording
    argv = ["predict", "--model", model, "--input", corpus, "--output", os.path.join(out, "embeddings"),
            "--id-column", "doc_id", "--batch-size", "3", "--shard-size", str(SHARD_SIZE), "--accelerator", "cpu",
            "--devices", "1", "--num-nodes", str(NUM_NODES), "--strategy", "ddp", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    record(out, int(os.environ["NODE_RANK"]), {"written": written})


def test_fit_on_two_nodes_splits_the_pairs_and_ends_with_equal_weights(tiny_model_dir, data_dir, tmp_path):
    cache = {"POOLHEAD_CACHE_DIR": str(tmp_path / "feature-cache")}  # shared by the nodes, as the README asks
    nodes = launch_nodes("fit", [tiny_model_dir, str(data_dir), str(tmp_path)], tmp_path, env=cache)
    assert [node["world_size"] for node in nodes] == [NUM_NODES] * NUM_NODES
    first, second = (set(node["seen"]) for node in nodes)
    assert first and second and not first & second  # different shards of the training pairs
    assert len(first | second) == TRAIN_PAIRS
    assert nodes[0]["weights"] == nodes[1]["weights"]


def test_predict_on_two_nodes_writes_every_id_once(tiny_model_dir, tmp_path):
    from poolhead.corpus import read_embeddings
    from poolhead.export import export_sentence_transformer

    model = export_sentence_transformer(tiny_model_dir, "mean", tmp_path / "model")
    corpus = tmp_path / "corpus.csv"
    lines = ["doc_id,text", *(f"doc-{i},A short text number {i} about item {i % 7}." for i in range(NUM_TEXTS))]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    nodes = launch_nodes("predict", [str(model), str(corpus), str(tmp_path)], tmp_path)
    first, second = (set(node["written"]) for node in nodes)
    assert first and second and not first & second  # each node wrote its own shards
    assert first | second == set(range(-(-NUM_TEXTS // SHARD_SIZE)))
    ids, embeddings = read_embeddings(tmp_path / "embeddings")
    assert sorted(ids) == sorted(f"doc-{i}" for i in range(NUM_TEXTS)) and len(ids) == NUM_TEXTS
    assert embeddings.shape[0] == NUM_TEXTS


if __name__ == "__main__":
    {"fit": fit_node, "predict": predict_node}[sys.argv[1]](*sys.argv[2:5])
