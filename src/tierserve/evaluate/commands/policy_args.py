"""The policy a ``tierserve eval`` subcommand works on, read for the stack it serves on: the
stack config owns the tiers a policy's ladders name."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tierserve.config import DEFAULT_CONFIG, load_config
from tierserve.policy.spec import Policy, load_policy
from tierserve.policy.start_router import DEFAULT_ENCODER, ENCODERS

if TYPE_CHECKING:
    from tierserve.prompt_models.encoder import Encoder

__all__ = ["add_encoder_argument", "add_policy_arguments", "read_encoder", "read_policy"]


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


def add_encoder_argument(parser: Any) -> None:
    parser.add_argument(
        "--encoder",
        choices=ENCODERS,
        default=DEFAULT_ENCODER,
        help="the sentence encoder the prompt models are trained on (every prompt model of a "
        "policy must share one)",
    )


def read_encoder(args: argparse.Namespace) -> Encoder:
    from tierserve.prompt_models.encoder import load_encoder

    return load_encoder(args.encoder)
