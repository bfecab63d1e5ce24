"""Encoder: texts in, one embedding per text out, from a local folder, a sentence-transformers
folder or a hub id (through the real hub cache code path, with a local stand-in)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from standins import hub_cache_standin
from transformers import AutoModel, AutoTokenizer

from poolhead import Encoder, MeanPooling, build_pooler, pool

# Deliberately not sorted by length, so the Encoder's longest-first batching must be undone.
TEXTS = [
    "No fever.",
    "The patient denies chest pain, palpitations and shortness of breath on exertion or at rest.",
    "Cough.",
    "Blood pressure was well controlled on the current dose of lisinopril.",
    "Follow up in two weeks.",
    "Mild edema of both ankles, no calf tenderness.",
    "ok",
]
HUB_ID = "emilyalsentzer/Bio_ClinicalBERT"


@pytest.fixture(scope="module")
def encoder(tiny_model_dir):
    return Encoder(tiny_model_dir, pooler="mean")


def test_encode_gives_one_float32_row_per_text_in_input_order(encoder):
    embeddings = encoder.encode(TEXTS, batch_size=3)

    assert embeddings.shape == (len(TEXTS), 32)
    assert embeddings.dtype == torch.float32
    for row, text in enumerate(TEXTS):  # one text at a time: no batching, no reordering
        torch.testing.assert_close(embeddings[row], encoder.encode(text), rtol=1e-5, atol=1e-5)


def test_encode_is_tokenizer_plus_model_plus_mean(tiny_model_dir, encoder):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModel.from_pretrained(tiny_model_dir).eval()
    text = TEXTS[3]

    with torch.no_grad():
        tokens = model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0]

    torch.testing.assert_close(encoder.encode(text), tokens.mean(0), rtol=1e-5, atol=1e-5)


def test_a_single_string_gives_a_vector(encoder):
    vector = encoder.encode("Cough.")
    assert vector.shape == (32,)


def test_no_texts_give_an_empty_matrix_of_the_right_width(encoder):
    assert encoder.encode([]).shape == (0, 32)


def test_batch_size_does_not_change_the_embeddings(encoder):
    reference = encoder.encode(TEXTS, batch_size=len(TEXTS))
    for batch_size in [1, 2, 5, 100]:
        torch.testing.assert_close(encoder.encode(TEXTS, batch_size=batch_size), reference, rtol=1e-5, atol=1e-5)


def test_encoding_twice_gives_identical_embeddings(encoder):
    # The backbone runs in eval mode: no dropout noise between calls.
    assert torch.equal(encoder.encode(TEXTS), encoder.encode(TEXTS))


def test_normalize_gives_unit_vectors_in_the_same_direction(tiny_model_dir, encoder):
    normalized = Encoder(tiny_model_dir, pooler="mean", normalize=True).encode(TEXTS)

    torch.testing.assert_close(normalized.norm(dim=1), torch.ones(len(TEXTS)))
    torch.testing.assert_close(normalized, F.normalize(encoder.encode(TEXTS), dim=1))


def record_output_hidden_states(encoder: Encoder) -> list:
    requested = []
    encoder.model.register_forward_pre_hook(
        lambda module, args, kwargs: requested.append(kwargs.get("output_hidden_states")), with_kwargs=True
    )
    return requested


def test_hidden_states_are_requested_only_when_the_pooler_reads_layers(tiny_model_dir, encoder):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModel.from_pretrained(tiny_model_dir).eval()
    layered = Encoder(tiny_model_dir, pooler="first_last_avg")
    mean_only = Encoder(tiny_model_dir, pooler="mean")
    asked_layered, asked_mean = record_output_hidden_states(layered), record_output_hidden_states(mean_only)

    embeddings = layered.encode(TEXTS, batch_size=4)
    mean_only.encode(TEXTS, batch_size=4)

    assert asked_layered == [True, True] and asked_mean == [False, False]
    inputs = tokenizer(TEXTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        outputs = model(**inputs, output_hidden_states=True)
    expected = pool(outputs, inputs["attention_mask"], "first_last_avg")
    torch.testing.assert_close(embeddings, expected, rtol=1e-5, atol=1e-5)


def test_progress_bar_shows_only_when_asked(encoder, capsys):
    encoder.encode(TEXTS, batch_size=2, show_progress_bar=True)
    assert "encode" in capsys.readouterr().err
    encoder.encode(TEXTS, batch_size=2, show_progress_bar=False)
    encoder.encode(TEXTS, batch_size=2)  # few texts: no bar by default
    assert capsys.readouterr().err == ""


def test_a_text_that_is_not_a_string_is_named_by_its_index(encoder):
    with pytest.raises(TypeError, match=r"texts\[2\] is int \(3\), not a string"):
        encoder.encode(["fine", "also fine", 3])
    with pytest.raises(TypeError, match=r"texts\[0\] is NoneType"):
        encoder.encode([None])


def test_batch_size_below_one_is_refused(encoder):
    with pytest.raises(ValueError, match=r"batch_size must be >= 1, got 0"):
        encoder.encode(TEXTS, batch_size=0)


def test_max_length_truncates_long_texts(tiny_model_dir):
    assert Encoder(tiny_model_dir).max_length == 128  # the tiny BERT's position limit
    encoder = Encoder(tiny_model_dir, max_length=8)
    assert encoder.max_length == 8
    assert encoder.tokenize([TEXTS[1]])["input_ids"].shape == (1, 8)


def test_poolers_by_name_config_or_instance(tiny_model_dir, encoder):
    mean = encoder.encode(TEXTS)
    # A parameter-free pooler built without hidden_size, a trained-head config, a head instance.
    for pooler in [MeanPooling(), {"name": "attention", "num_heads": 4}, build_pooler("attention", hidden_size=32)]:
        torch.testing.assert_close(Encoder(tiny_model_dir, pooler=pooler).encode(TEXTS), mean)
    latent = Encoder(tiny_model_dir, pooler={"name": "latent_attention", "num_heads": 4, "output_dim": 12})
    assert latent.encode(TEXTS).shape == (len(TEXTS), 12)


def test_pooler_for_another_hidden_size_is_refused(tiny_model_dir):
    with pytest.raises(ValueError, match=r"built for hidden size 768 but the backbone's hidden size is 32"):
        Encoder(tiny_model_dir, pooler=build_pooler("attention", hidden_size=768))
    with pytest.raises(TypeError, match=r"pooler must be a strategy name, a config dict or a Pooler, got int"):
        Encoder(tiny_model_dir, pooler=3)


def test_layers_the_backbone_lacks_are_refused_when_the_encoder_is_built(tiny_model_dir):
    # The tiny BERT has 2 layers: hidden_states holds 3 tensors (embeddings + 2 layers).
    with pytest.raises(ValueError, match=r"gives 3 hidden states .* layer\(s\) \[-4\] do not exist"):
        Encoder(tiny_model_dir, pooler={"name": "weighted_layer", "layers": 4})
    with pytest.raises(ValueError, match=r"layer\(s\) \[7\] do not exist"):
        Encoder(tiny_model_dir, pooler={"name": "weighted_layer", "layers": [0, 7]})


def test_sentence_transformers_folder_uses_its_max_seq_length(minilm_path):
    from sentence_transformers import SentenceTransformer

    encoder = Encoder(minilm_path, pooler="mean", normalize=True)

    assert encoder.max_length == 256  # from sentence_bert_config.json; the tokenizer says 512
    assert encoder.tokenize([" ".join(["word"] * 600)])["input_ids"].shape == (1, 256)
    # all-MiniLM-L6-v2 is mean pooling + normalize: the same embeddings as sentence-transformers'.
    expected = SentenceTransformer(minilm_path, device="cpu").encode(TEXTS, convert_to_tensor=True)
    torch.testing.assert_close(encoder.encode(TEXTS), expected, rtol=1e-5, atol=1e-5)


def test_hub_id_loads_through_the_hub_cache(offline_hub_cache):
    snapshot = hub_cache_standin(offline_hub_cache, HUB_ID)

    encoder = Encoder(HUB_ID)  # the user's notebook model card, resolved by huggingface_hub
    embeddings = encoder.encode(TEXTS)

    assert embeddings.shape == (len(TEXTS), 32)
    assert encoder.backbone.name_or_path == HUB_ID
    assert encoder.max_length == 512  # no tokenizer_config.json: BERT's 512 positions decide
    assert encoder.tokenizer.tokenize("Patient has no fever")[:2] == ["patient", "has"]  # vocab.txt was read
    torch.testing.assert_close(embeddings, Encoder(str(snapshot)).encode(TEXTS))


def test_hub_id_missing_from_an_offline_cache_fails(offline_hub_cache):
    # The negative control: the test above really read the stand-in, nothing else.
    with pytest.raises(OSError, match=r"couldn't find them in the cached files"):
        Encoder(HUB_ID)
