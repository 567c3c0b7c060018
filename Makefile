# The two commands in the README: `make demo` and `make test`. Each installs what it needs first,
# so both work on a fresh machine.

PYTHON  ?= python
SELFLOW ?= $(PYTHON) -m selflow
CONFIG  ?= config
BUILD   ?= build

# Quiet pip: installing as root is expected on the project's machines and in CI.
export PIP_ROOT_USER_ACTION := ignore
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test install install-test clean

## Install selflow (editable) with its runtime dependencies.
install:
	$(PYTHON) -m pip install -q -e .

## Install selflow with everything the tests need (extras and test tools).
install-test:
	$(PYTHON) -m pip install -q -e '.[test]'

## Check, compile and plot the reference configuration in config/, then run its site_audit flow embedded.
demo: install
	bash scripts/ensure-system-deps.sh
	$(SELFLOW) check $(CONFIG)
	$(SELFLOW) compile $(CONFIG) -o $(BUILD)/tables.py
	$(SELFLOW) plot $(CONFIG) --format png --output-dir $(BUILD)/plots
	$(SELFLOW) run-flow $(CONFIG) --flow site_audit --node-args '{"site": "https://shop.acme.test", "notify": "#web-audit"}'

## Run the whole test suite, starting Redis/RabbitMQ/PostgreSQL first if they are down.
test: install-test
	bash scripts/ensure-system-deps.sh
	bash scripts/ensure-services.sh
	$(PYTHON) -m pytest -q

clean:
	rm -rf $(BUILD) dist .pytest_cache .hypothesis *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
