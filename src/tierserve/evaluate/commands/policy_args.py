"""The policy a ``tierserve eval`` subcommand works on, read for the stack it serves on: the
stack config owns the tiers a policy's ladders name."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tierserve.config import DEFAULT_CONFIG, load_config
from tierserve.policy.spec import Policy, load_policy

__all__ = ["add_policy_arguments", "read_policy"]


def add_policy_arguments(parser: Any, *, help: str) -> None:
    parser.add_argument("--policy", type=Path, required=True, help=help)
    parser.add_argument(
        "--config",
        type=Path,
        default=Path(DEFAULT_CONFIG),
        help="the stack config the policy serves on (its tiers)",
    )


def read_policy(args: argparse.Namespace) -> Policy:
    return load_policy(args.policy, load_config(args.config).tier_names)
