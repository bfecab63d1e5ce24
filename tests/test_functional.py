"""The notebook's one-line API: the seed notebook's cells run as written, on a tiny BERT."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from poolhead import cosine_similarity, embedding_pooling, euclidean_distance, pool, show_tokenization

TEXT = "Patient has no history of fatigue, weight change, loss of appetite, or weakness."
TEXTS = [TEXT, "No fever.", "The patient denies chest pain and shortness of breath on exertion."]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModel.from_pretrained(tiny_model_dir)
    for param in model.parameters():
        param.requires_grad = False
    return tokenizer, model


def numpy_cosine(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_seed_notebook_cells_run_as_written(tiny_model_dir, capsys):
    # The notebook's cells, with its model card swapped for the tiny local BERT.
    model_card = tiny_model_dir
    tokenizer = AutoTokenizer.from_pretrained(model_card)
    model = AutoModel.from_pretrained(model_card)
    for param in model.parameters():
        param.requires_grad = False

    text = "Patient has no history of fatigue, weight change, loss of appetite, or weakness."
    inputs = tokenizer(text, return_tensors="pt")
    show_tokenization(inputs, tokenizer)
    output = model(**inputs)["last_hidden_state"]  # batch_size, sequence_length, hidden_size

    cls_pooling = embedding_pooling(output, "cls")
    eos_pooling = embedding_pooling(output, inputs["attention_mask"], "eos")
    max_pooling = embedding_pooling(output, inputs["attention_mask"], "max")
    mean_pooling = embedding_pooling(output, inputs["attention_mask"], "mean")

    similarity_cls_cls = cosine_similarity(cls_pooling[0].cpu().detach().numpy(), cls_pooling[0].cpu().detach().numpy())
    assert similarity_cls_cls == 1, "Wrong implementation for cosine similarity"
    similarity_cls_eos = cosine_similarity(cls_pooling[0].cpu().detach().numpy(), eos_pooling[0].cpu().detach().numpy())
    similarity_cls_max = cosine_similarity(cls_pooling[0].cpu().detach().numpy(), max_pooling[0].cpu().detach().numpy())
    similarity_cls_mean = cosine_similarity(
        cls_pooling[0].cpu().detach().numpy(), mean_pooling[0].cpu().detach().numpy()
    )
    print(f"Cosine similarity between CLS and EOS pooled embeddings: {similarity_cls_eos:.4f}")
    print(f"Cosine similarity between CLS and MAX pooled embeddings: {similarity_cls_max:.4f}")
    print(f"Cosine similarity between CLS and MEAN pooled embeddings: {similarity_cls_mean:.4f}")

    tokens = output[0]  # one text, no padding: every token is real
    assert output.shape == (1, len(inputs["input_ids"][0]), model.config.hidden_size)
    torch.testing.assert_close(cls_pooling[0], tokens[0])
    torch.testing.assert_close(eos_pooling[0], tokens[-1])
    torch.testing.assert_close(max_pooling[0], tokens.max(0).values)
    torch.testing.assert_close(mean_pooling[0], tokens.mean(0))
    assert similarity_cls_mean == pytest.approx(numpy_cosine(tokens[0], tokens.mean(0)), abs=1e-6)
    assert similarity_cls_max == pytest.approx(numpy_cosine(tokens[0], tokens.max(0).values), abs=1e-6)
    printed = capsys.readouterr().out
    assert "[CLS]" in printed and "fatigue" in printed
    assert f"CLS and MEAN pooled embeddings: {similarity_cls_mean:.4f}" in printed


def test_padding_to_max_length_leaves_the_notebook_poolings_unchanged(tiny):
    # The notebook's commented-out variant: padding="max_length". The mask keeps the result.
    tokenizer, model = tiny
    plain = tokenizer(TEXT, return_tensors="pt")
    padded = tokenizer(TEXT, return_tensors="pt", padding="max_length", max_length=64)
    assert padded["input_ids"].shape[1] == 64 > plain["input_ids"].shape[1]

    for strategy in ["cls", "eos", "max", "mean"]:
        expected = embedding_pooling(model(**plain)["last_hidden_state"], plain["attention_mask"], strategy)
        pooled = embedding_pooling(model(**padded)["last_hidden_state"], padded["attention_mask"], strategy)
        torch.testing.assert_close(pooled, expected, rtol=1e-5, atol=1e-5)


def test_pool_takes_the_model_output_for_first_last_avg(tiny):
    tokenizer, model = tiny
    inputs = tokenizer(TEXTS, return_tensors="pt", padding=True)
    outputs = model(**inputs, output_hidden_states=True)
    mask = inputs["attention_mask"]

    expected = []
    for row in range(len(TEXTS)):  # mean over real tokens of (first layer + last layer) / 2
        keep = mask[row].bool()
        expected.append(((outputs.hidden_states[1][row][keep] + outputs.hidden_states[-1][row][keep]) / 2).mean(0))

    torch.testing.assert_close(pool(outputs, mask, "first_last_avg"), torch.stack(expected))
    torch.testing.assert_close(pool(outputs.hidden_states, mask, "first_last_avg"), torch.stack(expected))
    torch.testing.assert_close(pool(outputs, mask, "mean"), pool(outputs.last_hidden_state, mask, "mean"))


def test_pool_without_layers_for_first_last_avg_says_how_to_get_them(tiny):
    tokenizer, model = tiny
    inputs = tokenizer(TEXTS, return_tensors="pt", padding=True)
    outputs = model(**inputs)  # no output_hidden_states
    with pytest.raises(ValueError, match=r"first_last_avg.*output_hidden_states=True"):
        pool(outputs, inputs["attention_mask"], "first_last_avg")


def test_pool_defaults_to_mean_and_keeps_the_dtype():
    tokens = torch.randn(2, 5, 8, dtype=torch.bfloat16)
    pooled = pool(tokens)
    assert pooled.dtype == torch.bfloat16
    torch.testing.assert_close(pooled.float(), tokens.float().mean(1), rtol=2**-8, atol=1e-6)


def test_pool_refuses_learned_heads_and_unknown_names():
    tokens = torch.randn(2, 5, 8)
    with pytest.raises(ValueError, match=r"'attention' is a learned head: build it with poolhead.build_pooler"):
        pool(tokens, None, "attention")
    with pytest.raises(ValueError, match=r"unknown pooling strategy 'average'; choose one of cls, eos, mean"):
        embedding_pooling(tokens, "average")
    with pytest.raises(TypeError, match=r"pool\(\) expects a \(batch, tokens, hidden\) tensor.*got ndarray"):
        pool(np.zeros((2, 5, 8)))


def test_strategy_given_twice_is_refused():
    with pytest.raises(TypeError, match=r"strategy given twice: 'cls' and 'mean'"):
        embedding_pooling(torch.randn(1, 3, 8), "cls", "mean")


def random_vectors(seed: int = 0):
    """Vectors as a user meets them: pooled torch rows, float32 / float64 numpy, any scale or size."""
    rng = np.random.default_rng(seed)
    for dim in [1, 3, 16, 31, 384, 768, 1024]:
        for scale in [1e-20, 1e-3, 1.0, 1e3, 1e20]:
            big = rng.standard_normal(dim + 1) * scale
            yield big[1:], np.array(big[1:])  # an unaligned view and its copy
            yield big[1:].astype(np.float32), big[1:].astype(np.float32)
    pooled = embedding_pooling(torch.randn(64, 12, 768, generator=torch.Generator().manual_seed(seed)), "mean")
    for row in pooled:
        yield row.cpu().detach().numpy(), row.cpu().detach().numpy()
        yield row, row.clone()
        yield row.to(torch.bfloat16), row.to(torch.bfloat16)


def test_cosine_similarity_of_a_vector_with_itself_is_exactly_one():
    # The notebook asserts `== 1`, not approximately.
    checked = 0
    for a, b in random_vectors():
        similarity = cosine_similarity(a, b)
        assert type(similarity) is float
        assert similarity == 1, (a.dtype, a.shape, similarity)
        checked += 1
    assert checked > 200


def test_cosine_similarity_matches_the_formula_for_numpy_and_torch():
    rng = np.random.default_rng(1)
    for _ in range(50):
        a, b = rng.standard_normal(64), rng.standard_normal(64)
        expected = numpy_cosine(a, b)
        assert cosine_similarity(a, b) == pytest.approx(expected, abs=1e-12)
        assert cosine_similarity(torch.from_numpy(a), b.astype(np.float32)) == pytest.approx(expected, abs=1e-6)
    a = rng.standard_normal(8)
    assert cosine_similarity(a, -a) == -1
    assert cosine_similarity([1.0, 0.0], [0.0, 2.0]) == 0
    assert cosine_similarity(np.zeros(4), a[:4]) == 0  # documented: a zero vector is similar to nothing
    assert cosine_similarity(torch.tensor([[3.0, 4.0]]), [4.0, 3.0]) == pytest.approx(0.96)  # (1, D) accepted


def test_cosine_similarity_refuses_mismatched_or_batched_input():
    with pytest.raises(ValueError, match=r"vectors differ in size: 3 vs 4"):
        cosine_similarity(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match=r"a must be one vector, got shape \(2, 3\); index a row first"):
        cosine_similarity(np.ones((2, 3)), np.ones(3))


def test_euclidean_distance_for_numpy_and_torch():
    rng = np.random.default_rng(2)
    for _ in range(20):
        a, b = rng.standard_normal(32), rng.standard_normal(32)
        expected = float(np.sqrt(((a - b) ** 2).sum()))
        distance = euclidean_distance(a, b)
        assert type(distance) is float and distance == pytest.approx(expected, rel=1e-12)
        assert euclidean_distance(torch.from_numpy(a).float(), b) == pytest.approx(expected, rel=1e-6)
        assert euclidean_distance(a, a) == 0
    assert euclidean_distance([0.0, 0.0], torch.tensor([3.0, 4.0])) == 5


def test_show_tokenization_prints_a_table_and_returns_the_tokens(tiny, capsys):
    tokenizer, _ = tiny
    inputs = tokenizer(["No fever.", TEXT], return_tensors="pt", padding=True)

    tokens = show_tokenization(inputs, tokenizer)  # row 0, padded to the longer text

    assert tokens == tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["pos", "id", "token", "mask"]
    assert len(lines) == 1 + inputs["input_ids"].shape[1]
    assert lines[1].split() == ["0", str(tokenizer.cls_token_id), "[CLS]", "1"]
    assert lines[-1].split() == [str(len(lines) - 2), str(tokenizer.pad_token_id), "[PAD]", "0"]

    second = show_tokenization(inputs, tokenizer, index=1)
    assert second[:3] == ["[CLS]", "patient", "has"]
