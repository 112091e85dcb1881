# The two commands: `make run` (set up and serve Corral) and `make test` (set up and run every test).
PY := .venv/bin/python
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: run test setup check lint bench fuzz clean

run:
	bash scripts/setup.sh
	$(PY) -m corral.cli.main admin init --if-needed
	$(PY) -m corral.cli.main serve

test:
	bash scripts/setup.sh --test
	bash scripts/check
	$(PY) -m pytest -p no:cacheprovider -n 2 tests
	bash fuzz/run.sh $(FUZZ_SECONDS)

FUZZ_SECONDS ?= 10

fuzz:
	bash fuzz/run.sh 60

setup:
	bash scripts/setup.sh

check:
	bash scripts/check

bench:
	for b in bench/*.py; do case $$b in */_*) continue;; esac; $(PY) $$b || exit 1; done

clean:
	rm -rf build .venv node_modules
