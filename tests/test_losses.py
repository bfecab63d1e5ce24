"""Pair losses: numerics against sentence-transformers' own losses, the registry, and loss/data checks."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from sentence_transformers.sentence_transformer.losses import (
    CoSENTLoss as STCoSENTLoss,
)
from sentence_transformers.sentence_transformer.losses import (
    CosineSimilarityLoss as STCosineSimilarityLoss,
)
from sentence_transformers.sentence_transformer.losses import (
    MultipleNegativesRankingLoss as STMultipleNegativesRankingLoss,
)

from poolhead.training.losses import (
    CoSENTLoss,
    InBatchNegativesLoss,
    PairClassificationLoss,
    build_loss,
    check_loss_matches_data,
)


def pairs(batch_size: int = 12, dim: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(batch_size, dim, generator=generator)
    b = a + 0.8 * torch.randn(batch_size, dim, generator=generator)
    scores = torch.rand(batch_size, generator=generator)
    scores[1] = scores[4]  # ties: CoSENT must not rank tied pairs against each other
    return a, b, scores


# sentence-transformers' losses only keep `model` for their own forward; their loss-from-embeddings
# code never touches it, so None stands in for a SentenceTransformer.


def test_cosent_matches_sentence_transformers_with_gradients():
    a, b, scores = pairs()
    a_st, b_st = a.clone().requires_grad_(), b.clone().requires_grad_()
    a.requires_grad_()
    ours = build_loss("cosent")(a, b, scores)
    theirs = STCoSENTLoss(None, scale=20.0).compute_loss_from_embeddings([a_st, b_st], scores)
    torch.testing.assert_close(ours, theirs)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(a.grad, a_st.grad)


def test_cosine_mse_matches_sentence_transformers():
    a, b, scores = pairs()
    theirs = STCosineSimilarityLoss(None).compute_loss_from_embeddings([a, b], scores)
    torch.testing.assert_close(build_loss("cosine_mse")(a, b, scores), theirs)


@pytest.mark.parametrize("name", ["in_batch_negatives", "mnrl", "infonce"])
def test_in_batch_negatives_matches_multiple_negatives_ranking(name):
    a, b, _ = pairs()
    loss = build_loss(name)
    theirs = STMultipleNegativesRankingLoss(None, scale=20.0).compute_loss_from_embeddings([a, b], None)
    torch.testing.assert_close(loss(a, b, torch.ones(len(a))), theirs)  # every pair a positive, as in ST
    assert loss.last_num_candidates == len(a)


def test_symmetric_in_batch_negatives_matches_both_directions():
    a, b, _ = pairs()
    theirs = STMultipleNegativesRankingLoss(
        None, directions=("query_to_doc", "doc_to_query"), partition_mode="per_direction"
    ).compute_loss_from_embeddings([a, b], None)
    torch.testing.assert_close(build_loss("mnrl", symmetric=True)(a, b, torch.ones(len(a))), theirs)


def test_min_score_keeps_low_pairs_as_negatives_only():
    """Pairs under min_score are no anchors, but their b's still compete as negatives."""
    a, b, scores = pairs()
    positive = scores >= 0.5
    assert 0 < positive.sum() < len(scores)
    # In sentence-transformers terms: anchors a[positive], their positives, and the other b's as hard negatives.
    theirs = STMultipleNegativesRankingLoss(None).compute_loss_from_embeddings(
        [a[positive], b[positive], b[~positive]], None
    )
    loss = InBatchNegativesLoss(min_score=0.5)
    torch.testing.assert_close(loss(a, b, scores), theirs)
    assert loss.last_num_candidates == len(a)


def test_scores_without_min_score_warn_that_every_pair_is_a_positive():
    a, b, scores = pairs()
    with pytest.warns(UserWarning, match="without min_score treats every pair as a positive"):
        InBatchNegativesLoss()(a, b, scores)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        InBatchNegativesLoss()(a, b, torch.ones(len(a)))  # all pairs truly similar
        InBatchNegativesLoss(min_score=0.5)(a, b, scores)


def test_label_data_uses_label_one_as_positive():
    a, b, _ = pairs()
    labels = torch.tensor([1, 0] * 6)
    with_labels = InBatchNegativesLoss()(a, b, labels)
    as_scores = InBatchNegativesLoss(min_score=1.0)(a, b, labels.float())
    torch.testing.assert_close(with_labels, as_scores)


def test_batch_without_positives_gives_zero_loss_and_zero_gradient():
    a, b, _ = pairs(batch_size=6)
    a.requires_grad_()
    loss = InBatchNegativesLoss(min_score=0.9)(a, b, torch.full((6,), 0.1))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.count_nonzero(a.grad) == 0


def test_cosent_ranks_better_aligned_pairs_lower_loss():
    a, b, scores = pairs()
    cosines = F.cosine_similarity(a, b)
    loss = CoSENTLoss()
    agreeing = loss(a, b, cosines)  # scores ordered exactly like the cosines
    disagreeing = loss(a, b, -cosines)  # reversed order
    assert agreeing < disagreeing


def test_pair_classification_learns_separable_pairs():
    torch.manual_seed(0)
    u = torch.randn(64, 8)
    labels = torch.randint(0, 3, (64,))
    v = u + labels[:, None].float() * 2.0  # the class is the distance between u and v
    loss = build_loss("softmax", embedding_dim=8, num_labels=3)
    assert sum(p.numel() for p in loss.parameters()) == (3 * 8 + 1) * 3
    optimizer = torch.optim.Adam(loss.parameters(), lr=0.1)
    for _ in range(60):
        optimizer.zero_grad()
        loss(u, v, labels).backward()
        optimizer.step()
    logits = loss.predict(u, v)
    assert logits.shape == (64, 3)
    assert (logits.argmax(dim=-1) == labels).float().mean() > 0.95


def test_pair_classification_refuses_float_scores():
    loss = PairClassificationLoss(embedding_dim=4)
    with pytest.raises(ValueError, match="needs integer class labels.*cosent"):
        loss(torch.randn(3, 4), torch.randn(3, 4), torch.tensor([0.1, 0.5, 0.9]))


def test_build_loss_errors_name_the_choices():
    with pytest.raises(ValueError, match="unknown loss 'cosnt'; choose one of cosent, cosine_mse, in_batch_negatives"):
        build_loss("cosnt")
    with pytest.raises(ValueError, match="loss 'cosent' has no option 'min_score'; its options: scale"):
        build_loss("cosent", min_score=0.5)
    with pytest.raises(ValueError, match="needs embedding_dim"):
        build_loss("pair_classification")
    assert build_loss("infonce", scale=10.0, symmetric=True).scale == 10.0
    assert build_loss("CoSENT").label_kind == "score"


def test_check_loss_matches_data():
    check_loss_matches_data(build_loss("cosent"), "score")
    check_loss_matches_data(build_loss("mnrl"), "label")
    check_loss_matches_data(build_loss("mnrl"), "score")
    check_loss_matches_data(build_loss("softmax", embedding_dim=4), "label")
    expected = "'pair_classification' needs integer labels but the data at stsb/ has scores; use cosent"
    with pytest.raises(ValueError, match=expected):
        check_loss_matches_data(build_loss("softmax", embedding_dim=4), "score", data="stsb/")
    with pytest.raises(ValueError, match="'cosine_mse' needs similarity scores but the data has integer labels"):
        check_loss_matches_data(build_loss("cosine_mse"), "label")
