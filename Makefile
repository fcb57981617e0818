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

# Debian's Chromium (apt-get, as root or with sudo: about 130 system packages) + Playwright and Gradio in .venv,
# for the web-demo browser test; no browser download. Opt-in: `make test` runs it only where
# UNPAIRED_REQUIRE_BROWSER=1 (CI, .ci/run), and then a failure to install fails the test run.
browser: setup
	scripts/install-browser.sh $(PY)

# The test suite on the CPU. Installs nothing outside .venv unless UNPAIRED_REQUIRE_BROWSER=1 (then `make browser`
# first); without Chromium the browser test is skipped, said in the last line of the run.
test: setup $(if $(filter 1,$(UNPAIRED_REQUIRE_BROWSER)),browser,)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
