# Two commands on a fresh machine with python3:  `make demo` (set-up + the main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DEMO   ?= runs/demo

.PHONY: setup browser demo test clean

$(VENV)/.installed: pyproject.toml requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-test.txt
	$(PY) -m pip install --quiet -e .
	touch $@

setup: $(VENV)/.installed

# Synthesize a small two-domain set with ground-truth masks, train the `quick` AttentionGAN on the CPU,
# translate the test images and write an overview of inputs, translations and attention masks.
demo: setup
	$(PY) -m unpaired data synth $(DEMO)/data
	$(PY) -m unpaired train quick --data $(DEMO)/data --out $(DEMO)/run $(if $(wildcard $(DEMO)/run/checkpoints),--resume,)
	$(PY) -m unpaired translate --checkpoint $(DEMO)/run --input $(DEMO)/data/testA --output $(DEMO)/translated \
		--save-attention --overview $(DEMO)/overview.png
	@echo "demo done: open $(DEMO)/overview.png (input | translation | attention | true mask);"
	@echo "training samples in $(DEMO)/run/samples/, TensorBoard: $(VENV)/bin/tensorboard --logdir $(DEMO)/run"

# Debian's Chromium + Playwright for the web-demo browser test (no browser download; skipped loudly if impossible).
browser: setup
	-scripts/install-browser.sh $(PY)

test: setup browser
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
