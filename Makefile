# `make run`: train the tutorial's InfoGAN on the embedded MNIST digits (about 12 minutes on
# 2 CPU cores), write a 10x10 grid (row i = categorical value i), print what it wrote.
# `make quality`: the quality recipe (digit per categorical value) for 3,000 iterations, the best
# checkpoint kept by the unsupervised score, then its full evaluation (about 9 minutes, plus
# about 6 the first time, when the judge classifier is trained and cached).
# `make test`: the test suite.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
RUN    ?= runs/tutorial-$(shell date +%Y%m%d-%H%M%S)
QRUN   ?= runs/quality-$(shell date +%Y%m%d-%H%M%S)
MINUTES ?= 12
STEPS  ?= 6000

.PHONY: run quality test clean-venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@rm -f $(VENV)/.installed-*; touch $@

run: $(STAMP)
	$(VENV)/bin/infogan train $(RUN) --preset tutorial --data mnist-5k \
		--steps $(STEPS) --minutes $(MINUTES) --log-every 100
	$(VENV)/bin/infogan generate $(RUN) --n 100 --seed 0 --out $(RUN)/random-100.png

quality: $(STAMP)
	$(VENV)/bin/infogan train $(QRUN) --preset quality --data mnist-5k --steps 3000 \
		--keep-best unsupervised --log-every 100
	$(VENV)/bin/infogan evaluate $(QRUN) --checkpoint best --json $(QRUN)/evaluate.json

test: $(STAMP)
	$(PY) -m pytest

clean-venv:
	rm -rf $(VENV)
