"""What every ``tierserve eval`` subcommand does with its report."""

from __future__ import annotations

from pathlib import Path

from tierserve.evaluate.figures import Figures

__all__ = ["write_report"]


def write_report(out: Path | None, report: Figures) -> None:
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report.model_dump_json(indent=1) + "\n")
