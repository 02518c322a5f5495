# `make run`: set up .venv, train SimpleCNN briefly and evaluate it.  `make test`: set up .venv and run the tests.
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
	$(BIN)/mnistctl train --arch simplecnn --epochs 2 --name quickstart
	$(BIN)/mnistctl eval latest

test: $(BIN)/mnistctl
	$(BIN)/python -m pytest -q

bench: $(BIN)/mnistctl
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/predict_speed.py

clean:
	rm -rf $(VENV) build *.egg-info
