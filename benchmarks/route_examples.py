"""Five sample requests through a running stack with the support policy: the route chosen and
its reason codes, as a Markdown table (docs) and JSON (benchmarks/results/).

    python benchmarks/route_examples.py --url http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from openai import OpenAI

HERE = Path(__file__).resolve().parent
SAMPLES = [
    ("public", "unused", "How do I reset my password?"),
    ("northbank", "sk-northbank-demo", "How do I reset my password?"),
    (
        "public",
        "unused",
        "Extract the ticket fields as JSON from this email: customer C-7741 "
        "reports the app crashes at login; urgent.",
    ),
    (
        "public",
        "unused",
        "A customer threatens legal action unless we refund them. Draft our reply.",
    ),
    ("internal", "sk-internal-demo", "Write a short reply thanking a customer for their feedback."),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", type=Path, default=HERE / "results/route_examples.json")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for tenant, key, text in SAMPLES:
        client = OpenAI(base_url=f"{args.url}/v1", api_key=key, timeout=600, max_retries=0)
        completion = client.chat.completions.create(
            model="tierserve",
            messages=[{"role": "user", "content": text}],
            temperature=0,
            max_tokens=160,
        )
        meta = (completion.model_extra or {})["tierserve"]
        rows.append(
            {
                "tenant": tenant,
                "request": text,
                "answer": completion.choices[0].message.content,
                **{
                    k: meta[k]
                    for k in (
                        "route",
                        "outcome",
                        "tier",
                        "tiers_tried",
                        "plan",
                        "reasons",
                        "policy_version",
                    )
                },
            }
        )
    print("| request (tenant) | route | tiers tried → outcome | plan | step reasons |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['request'][:60]}… ({row['tenant']}) | {row['route']} | "
            f"{' → '.join(row['tiers_tried'])} → {row['outcome']} | "
            f"`{'; '.join(row['plan'])}` | `{'; '.join(row['reasons'])}` |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
