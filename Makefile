# `make run`: set up .venv, train with the fast preset, evaluate, plot.  `make test`: set up .venv and run the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test bench clean

$(BIN)/mnistctl: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,onnx]'
	touch $@

run: $(BIN)/mnistctl
	$(BIN)/mnistctl train --preset fast
	$(BIN)/mnistctl eval latest
	$(BIN)/mnistctl visualize latest --what curves,wrong
	@echo "The pictures are in the plots/ folder of the run above. Use the tools with: source $(VENV)/bin/activate"

test: $(BIN)/mnistctl
	$(BIN)/python -m pytest -q

bench: $(BIN)/mnistctl
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/predict_speed.py

clean:
	rm -rf $(VENV) build *.egg-info
