"""InBatchNegativesLoss under DDP: two CPU processes (gloo) must train exactly like one process on both batches."""

from __future__ import annotations

import os
import socket
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from poolhead.training.losses import InBatchNegativesLoss

WORLD_SIZE = 2
TIMEOUT_S = 120
DIM = 8
# (pairs per process, min_score, symmetric): equal batches with every pair a positive; then a smaller batch on one
# process, with only some pairs as positives and both directions.
CASES = [((4, 4), 0.0, False), ((5, 3), 0.5, True)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shared_batch(sizes: tuple[int, ...], seed: int) -> tuple[torch.Tensor, ...]:
    """The concatenated batch of all processes (every process builds the same one) and an encoder weight."""
    generator = torch.Generator().manual_seed(seed)
    total = sum(sizes)
    inputs_a = torch.randn(total, DIM, generator=generator)
    inputs_b = inputs_a + 0.5 * torch.randn(total, DIM, generator=generator)
    scores = torch.rand(total, generator=generator)
    weight = torch.eye(DIM) + 0.1 * torch.randn(DIM, DIM, generator=generator)
    return inputs_a, inputs_b, scores, weight


def embed(weight: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """A linear 'encoder', so parameter gradients can be compared as DDP would average them."""
    embeddings = inputs @ weight
    embeddings.retain_grad()
    return embeddings


def check_case(rank: int, sizes: tuple[int, ...], min_score: float | None, symmetric: bool, seed: int) -> None:
    inputs_a, inputs_b, scores, weight = shared_batch(sizes, seed)
    start = sum(sizes[:rank])
    rows = slice(start, start + sizes[rank])

    # One process over the whole concatenated batch.
    single_weight = weight.clone().requires_grad_()
    single_a, single_b = embed(single_weight, inputs_a), embed(single_weight, inputs_b)
    single_loss = InBatchNegativesLoss(min_score=min_score, symmetric=symmetric, gather_across_processes=False)
    expected = single_loss(single_a, single_b, scores)
    expected.backward()

    # This process's share, with the other processes' pairs gathered as negatives.
    local_weight = weight.clone().requires_grad_()
    local_a, local_b = embed(local_weight, inputs_a[rows]), embed(local_weight, inputs_b[rows])
    loss = InBatchNegativesLoss(min_score=min_score, symmetric=symmetric)
    value = loss(local_a, local_b, scores[rows])
    value.backward()

    assert loss.last_num_candidates == sum(sizes), (rank, loss.last_num_candidates)
    # DDP averages gradients over processes: the averaged loss and weight gradient must be the single ones,
    # and each process's embedding gradient is world_size times its rows of the single-process one.
    mean_value = value.detach().clone()
    dist.all_reduce(mean_value)
    torch.testing.assert_close(mean_value / WORLD_SIZE, expected.detach())
    torch.testing.assert_close(local_a.grad / WORLD_SIZE, single_a.grad[rows])
    torch.testing.assert_close(local_b.grad / WORLD_SIZE, single_b.grad[rows])
    weight_grad = local_weight.grad.clone()
    dist.all_reduce(weight_grad)
    torch.testing.assert_close(weight_grad / WORLD_SIZE, single_weight.grad)


def run_rank(rank: int, port: int) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE)
    try:
        for seed, (sizes, min_score, symmetric) in enumerate(CASES):
            check_case(rank, sizes, min_score, symmetric, seed)
    finally:
        dist.destroy_process_group()


def test_in_batch_negatives_gathers_every_process_batch_with_gradients():
    # spawn, not fork: a fork of a process that already ran torch / tokenizer threads can deadlock.
    context = mp.start_processes(run_rank, args=(free_port(),), nprocs=WORLD_SIZE, join=False, start_method="spawn")
    deadline = time.monotonic() + TIMEOUT_S
    # join() re-raises an assertion error of a process here, with its traceback.
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.terminate()
            pytest.fail(f"the processes did not finish in {TIMEOUT_S} s: one is probably waiting in a collective")
