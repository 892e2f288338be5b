"""Serving benchmarks: vLLM's benchmark client against direct vLLM and the tierserve stack."""
