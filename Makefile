# translate: every target creates the virtual environment on first use.
# The dev extra includes ctranslate2 (the ct2 extra), so `make test` runs the CTranslate2 tests too.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

MODEL ?=
DATA ?=
EXPERIMENT ?=
ARGS ?=
CKPT ?=
ENGINE ?=
QUANTIZE ?=
GLOSSARY ?=
QUANT ?= int8
OUT ?=

# Hydra overrides assembled from the friendly variables above.
TRAIN_OVERRIDES := $(if $(MODEL),model=$(MODEL)) $(if $(DATA),data=$(DATA)) $(if $(EXPERIMENT),experiment=$(EXPERIMENT)) $(ARGS)
EVAL_OVERRIDES := $(if $(CKPT),'checkpoints=[$(CKPT)]') $(if $(ENGINE),engine=$(ENGINE)) $(if $(QUANTIZE),quantize=$(QUANTIZE)) $(if $(GLOSSARY),glossary=$(GLOSSARY)) $(ARGS)

.PHONY: setup venv test lint data train eval export import compare serve bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q '$(TORCH)'
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)
setup: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check translate scripts tests

data: $(STAMP)
	$(PY) -m translate.data.report $(ARGS)

train: $(STAMP)
	$(PY) -m translate.train $(TRAIN_OVERRIDES)

eval: $(STAMP)
	$(PY) -m translate.evaluate $(EVAL_OVERRIDES)

# make export CKPT=runs/<run>/checkpoints/best.pt [QUANT=int8|int8_float32|int16|float16|float32] [OUT=dir]
export: $(STAMP)
	$(PY) -m translate.export $(or $(CKPT),$(error make export needs CKPT=path/to/best.pt)) --format ct2 \
		--quantization $(QUANT) -o $(or $(OUT),exports/ct2-$(QUANT)) $(ARGS)

# make import SOURCE=Helsinki-NLP/opus-mt-es-en [OUT=checkpoints/opus-mt-es-en.pt]  (a hub id or a local directory)
SOURCE ?=
import: $(STAMP)
	$(PY) -m translate.importer marian $(or $(SOURCE),$(error make import needs SOURCE=dir-or-hub-id)) \
		-o $(or $(OUT),checkpoints/$(notdir $(SOURCE)).pt) $(ARGS)

compare: $(STAMP)
	$(PY) scripts/compare.py $(ARGS)

# The HTTP service and web page on 127.0.0.1:8000: make serve ARGS="--model name=runs/x/checkpoints/best.pt"
serve: $(STAMP)
	$(PY) -m translate.cli serve $(ARGS)

bench: $(STAMP)
	$(PY) scripts/bench_attention.py
	$(PY) scripts/bench_train.py
	$(PY) scripts/bench_decode.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
