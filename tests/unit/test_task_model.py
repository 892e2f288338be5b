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
from tierserve.prompt_models.encoder import sentence_encoder
from tierserve.prompt_models.task_classifier import EmbeddingTaskClassifier

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
def encoder() -> object:
    return sentence_encoder()


@pytest.fixture(scope="module")
def classifier(encoder: object) -> EmbeddingTaskClassifier:
    policy = load_policy(POLICIES / "support.yaml", STACK_TIERS)
    assert policy.task_classifier is not None
    return EmbeddingTaskClassifier(encoder, policy.task_classifier)


def test_clear_requests_get_their_class(classifier: EmbeddingTaskClassifier) -> None:
    assert classifier.predict("How can I change my password?")[0] is TaskClass.FAQ
    assert classifier.predict("Write a short apology email for the late delivery")[0] is (
        TaskClass.DRAFTING
    )


def test_one_batch_gives_what_each_text_gets_alone(classifier: EmbeddingTaskClassifier) -> None:
    together = classifier.predict_many(ASKED)
    for text, (task, probability) in zip(ASKED, together, strict=True):
        alone_task, alone_probability = classifier.predict(text)
        assert task is alone_task and probability == pytest.approx(alone_probability, abs=1e-4)


def test_shipped_weights_were_trained_on_the_shipped_examples() -> None:
    policy = load_policy(POLICIES / "support.yaml", STACK_TIERS)
    assert policy.task_classifier is not None
    assert policy.task_classifier.trained_on == examples_digest(EXAMPLES), (
        "support-examples.jsonl changed: run `tierserve eval task-classifier "
        "serve_configs/policies/support.yaml` (then `make chart-files`)"
    )


def test_the_weights_compute_what_the_calibrated_model_computes(encoder: object) -> None:
    """The gateway's probabilities are scikit-learn's: the exported folds reproduce the
    calibrated model's predict_proba, so classifier_min_probability keeps its meaning."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression

    from tierserve.evaluate.task_classifier import _exported

    examples = load_examples(EXAMPLES)
    vectors = np.asarray(encoder.encode([e.text for e in examples], normalize_embeddings=True))  # type: ignore[attr-defined]
    model = CalibratedClassifierCV(LogisticRegression(C=4.0, max_iter=2000), method="sigmoid", cv=5)
    model.fit(vectors, [e.task.value for e in examples])
    asked = np.asarray(encoder.encode(ASKED, normalize_embeddings=True))  # type: ignore[attr-defined]
    spec = _exported(model, None)
    assert spec.classes == [str(c) for c in model.classes_]
    assert np.allclose(spec.probabilities(asked), model.predict_proba(asked), atol=1e-6)


def test_held_out_accuracy_stays_well_above_chance(encoder: object) -> None:
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
