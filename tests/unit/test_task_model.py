"""The task classifier on the real packaged embedding model (no Ray, no vLLM): the weights the
policy ships, and the offline training that wrote them."""

from pathlib import Path

import numpy as np
import pytest

from tests.fakes import STACK_TIERS
from tierserve.evaluate.task_classifier import (
    examples_digest,
    holdout_accuracy,
    load_examples,
)
from tierserve.policy.spec import TaskClass, load_policy
from tierserve.prompt_models.embedder import EmbeddingTaskClassifier, SentenceEmbedder
from tierserve.prompt_models.encoder import Encoder, load_encoder

POLICIES = Path(__file__).resolve().parents[2] / "serve_configs/policies"
EXAMPLES = POLICIES / "support-examples.jsonl"
ASKED = [
    "How can I change my password?",
    "Write a short apology email for the late delivery",
    "Extract the invoice number and total as JSON: INV-7 total 12.50",
    "I was charged twice and want my money back or I will sue",
    "What is the capital of Peru?",
]


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    policy = load_policy(POLICIES / "support.yaml", STACK_TIERS)
    assert policy.encoder is not None
    return load_encoder(policy.encoder)


@pytest.fixture(scope="module")
def classifier(encoder: Encoder) -> EmbeddingTaskClassifier:
    policy = load_policy(POLICIES / "support.yaml", STACK_TIERS)
    assert policy.task_classifier is not None
    return EmbeddingTaskClassifier(policy.task_classifier, SentenceEmbedder(encoder))


def test_clear_requests_get_their_class(classifier: EmbeddingTaskClassifier) -> None:
    assert classifier.predict("How can I change my password?")[0] is TaskClass.FAQ
    assert classifier.predict("Write a short apology email for the late delivery")[0] is (
        TaskClass.DRAFTING
    )


@pytest.mark.parametrize("name", ["all-MiniLM-L6-v2", "all-MiniLM-L6-v2-int8"])
def test_a_prompt_is_embedded_the_same_alone_or_beside_others(name: str) -> None:
    """A request's task, kind and start must not depend on what else the gateway was asked
    at the same time (concurrent prompts may share an encoder pass)."""
    encoder = load_encoder(name)  # type: ignore[arg-type]
    together = encoder.encode(ASKED)
    for text, vector in zip(ASKED, together, strict=True):
        assert np.allclose(encoder.encode([text])[0], vector, atol=1e-5)


def test_the_minilm_encoder_pools_as_sentence_transformers_does() -> None:
    from sentence_transformers import SentenceTransformer

    from tierserve.prompt_models.encoder import _packaged_minilm

    reference = SentenceTransformer(str(_packaged_minilm()), device="cpu")
    long = "filler words " * 300 + "What is the capital of France?"
    texts = [*ASKED, long]
    expected = reference.encode(texts, normalize_embeddings=True)
    assert np.allclose(load_encoder("all-MiniLM-L6-v2").encode(texts), expected, atol=1e-5)


def test_the_int8_encoder_stays_close_to_minilm() -> None:
    """Its 8-bit weights move each embedding a little (the classifiers trained on it keep
    their accuracy: benchmarks/results/encoders.json); a broken export would not."""
    exact = load_encoder("all-MiniLM-L6-v2").encode(ASKED)
    int8 = load_encoder("all-MiniLM-L6-v2-int8").encode(ASKED)
    similarity = (exact * int8).sum(axis=1)
    assert similarity.min() > 0.85 and similarity.mean() > 0.9


def test_shipped_weights_were_trained_on_the_shipped_examples() -> None:
    policy = load_policy(POLICIES / "support.yaml", STACK_TIERS)
    assert policy.task_classifier is not None
    assert policy.task_classifier.trained_on == examples_digest(EXAMPLES), (
        "support-examples.jsonl changed: run `tierserve eval task-classifier "
        "serve_configs/policies/support.yaml` (then `make chart-files`)"
    )


def test_the_weights_compute_what_the_calibrated_model_computes(encoder: Encoder) -> None:
    """The gateway's probabilities are scikit-learn's: the exported folds reproduce the
    calibrated model's predict_proba, so classifier_min_probability keeps its meaning."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression

    from tierserve.evaluate.task_classifier import _exported

    examples = load_examples(EXAMPLES)
    vectors = encoder.encode([e.text for e in examples])
    model = CalibratedClassifierCV(LogisticRegression(C=4.0, max_iter=2000), method="sigmoid", cv=5)
    model.fit(vectors, [e.task.value for e in examples])
    asked = encoder.encode(ASKED)
    spec = _exported(model, encoder, None)
    assert spec.classes == [str(c) for c in model.classes_]
    assert np.allclose(spec.probabilities(asked), model.predict_proba(asked), atol=1e-6)


def test_held_out_accuracy_stays_well_above_chance(encoder: Encoder) -> None:
    report = holdout_accuracy(load_examples(EXAMPLES), seed=0, encoder=encoder)
    assert report.test == 30
    assert report.accuracy >= 0.7  # six classes: chance is 0.17; measured 0.80 (seeds 0-4)


def test_a_policy_with_examples_but_no_weights_names_the_command(tmp_path: Path) -> None:
    """Serving never trains: a policy naming only its examples is refused with the fix, and
    the command the error names writes the weights that make it load."""
    import yaml

    from tests.fakes import policy_data
    from tierserve.cli import main
    from tierserve.errors import ConfigError

    data = policy_data()
    del data["task_classifier"]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"tierserve eval task-classifier"):
        load_policy(path, STACK_TIERS)
    assert main(["eval", "task-classifier", str(path), "--out", str(tmp_path / "t.json")]) == 0
    data["task_classifier"] = {"file": "t.json"}
    path.write_text(yaml.safe_dump(data))
    trained = load_policy(path, STACK_TIERS).task_classifier
    assert trained is not None and trained.trained_on == examples_digest(EXAMPLES)
    assert len(trained.folds) == 5 and "faq" in trained.classes
