"""The human-review queue keeps what the decision log keeps (personal data redacted), stays
bounded on disk, and stays readable after a crash mid-write."""

from pathlib import Path

from tests.fakes import chat_request, completion_json, support_service
from tierserve.review import JsonlReviewQueue


async def test_personal_data_is_redacted_in_the_review_queue(tmp_path: Path) -> None:
    chat, _, queue = support_service(
        tmp_path, answers={"large": "Write to jane@example.com for the refund."}
    )
    text = "Draft a reply promising a refund to jo@example.com, card 4111 1111 1111 1111"
    body, _ = await completion_json(chat, chat_request(text))
    assert body["tierserve"]["outcome"] == "human_review"
    (queued,) = queue.read()
    raw = queue.path.read_text()
    assert "jo@example.com" not in raw and "4111 1111" not in raw and "jane@" not in raw
    assert queued["messages"][-1]["content"].endswith("[email], card [card]")
    assert queued["prompts_kept"] == "redact"


def test_the_queue_rotates_past_its_size_and_keeps_a_bounded_number_of_files(
    tmp_path: Path,
) -> None:
    queue = JsonlReviewQueue(tmp_path / "review.jsonl", max_bytes=4_096, keep_files=2)
    ids = [queue.submit({"messages": [{"role": "user", "content": "x" * 900}]}) for _ in range(20)]
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["review.jsonl", "review.jsonl.1", "review.jsonl.2"]
    assert all(p.stat().st_size <= 4_096 for p in tmp_path.iterdir())
    kept = [item["review_id"] for item in queue.read()]
    assert kept == ids[-len(kept) :] and 8 <= len(kept) < 20  # the newest, oldest first


def test_a_line_cut_short_by_a_crash_does_not_hide_the_others(tmp_path: Path) -> None:
    queue = JsonlReviewQueue(tmp_path / "review.jsonl")
    first = queue.submit({"route": "a"})
    with queue.path.open("a") as handle:
        handle.write('{"review_id": "review-torn", "rou')
    after = queue.submit({"route": "b"})
    assert [item["review_id"] for item in queue.read()] == [first, after]
