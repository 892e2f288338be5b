r"""``tierserve eval``: collect or import outcome data, sweep routers over it, calibrate a
policy version, train the task classifier, and replay the decision log under a candidate policy.
One module per subcommand: its arguments (``register``) and what it does (``run``).

    tierserve eval import routellm benchmarks/data/routellm/gsm8k_responses.csv --out gsm8k.jsonl
    tierserve eval import judged judgements.jsonl --questions question.jsonl --out mt.jsonl
    tierserve eval collect gsm8k --limit 100 --out benchmarks/results/outcomes_gsm8k.jsonl
    tierserve eval sweep gsm8k.jsonl --routers random,length,embedding,trained --signal conf_q10 \
        --out report.json --plot frontier.png
    tierserve eval calibrate outcomes.jsonl --signal conf_q10 --objective quality_share=0.95 \
        --policy serve_configs/policies/support.yaml --route faq --out calibrate.json
    tierserve eval task-classifier serve_configs/policies/support.yaml
    tierserve eval fields benchmarks/results/extraction_fields_rows.jsonl \
        --policy serve_configs/policies/support.yaml --route extraction --max-silent-wrong 0.05
    tierserve eval replay decisions.jsonl --policy candidate.yaml --outcomes outcomes.jsonl
    tierserve eval replay decisions.jsonl --policy candidate.yaml --regenerate --labels general \
        --outcomes-out replayed.jsonl --write-version candidate-v2.yaml

Cascades (sweep, calibrate) and replay decide through the serving ladder kernel
(:mod:`tierserve.policy.ladder`), so they predict what the gateway does.
"""

from __future__ import annotations

from typing import Any

from tierserve.evaluate.commands import (
    calibrate,
    collect,
    fields,
    import_outcomes,
    replay,
    sources,
    sweep,
    task_classifier,
)

__all__ = ["add_parser"]

SUBCOMMANDS = (
    import_outcomes,
    collect,
    calibrate,
    sources,
    task_classifier,
    fields,
    replay,
    sweep,
)


def add_parser(sub: Any) -> None:
    evaluate = sub.add_parser("eval", help="offline router evaluation over outcome data")
    actions = evaluate.add_subparsers(dest="eval_action", required=True)
    for command in SUBCOMMANDS:
        command.register(actions)
