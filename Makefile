# Two commands do all set-up on a fresh machine:  `make run` (execute the labs) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-requirements

.PHONY: help setup run test lab weights bench colab student clean browser demo

help:
	@echo "make run    execute every lab notebook into build/ (needs network once for the weights)"
	@echo "make test   unit tests + every notebook under nbval, against offline stand-in models (any user)"
	@echo "make test-colab [PYTHON_COLAB=python3.13]   the same tests in .venv-colab, at Colab's versions (.ci/colab-constraints.txt)"
	@echo "make lab [LAB_ARGS=...]   start JupyterLab on the notebooks (also as root, e.g. in a container)"
	@echo "make demo [DEMO_ARGS=...]   serve the live demo (the three labs' models in one page) on http://127.0.0.1:7860;"
	@echo "            DEMO_ARGS=--help lists its options (--share, --port, --zero-shot google/siglip2-base-patch16-224, ...)"
	@echo "make browser   install Chromium for the browser tests where none is found (as root: apt-get install chromium);"
	@echo "            without one, make test skips them (CVKIT_REQUIRE_BROWSER=1 makes that a failure, as in CI)"
	@echo "make weights [CACHE=dir] [WITH_BASE=1]   fetch every lab's real weights once into .cache/ (then no network)"
	@echo "make bench [BENCH_ARGS=...]  benchmark each lab (kit vs bare library, full-size costs) -> table + build/bench.json"
	@echo "make colab [REPO=owner/name]  stamp the GitHub repository (default: the origin remote) into badges and setup cells"
	@echo "make student [REPO=owner/name] [BRANCH=name]  write the student edition (no solutions, answers or outputs) to build/student/"

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	touch $@

setup: $(STAMP)

run: setup
	$(BIN)/python scripts/run_notebooks.py

bench: setup
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

test: setup
	$(BIN)/ruff check --quiet .
	$(BIN)/python -m pytest

# The suite in a second venv at the versions of Colab's runtime (Python 3.13); .ci/colab_env.sh says how it is built.
PYTHON_COLAB ?= python3.13
VENV_COLAB   := .venv-colab

.PHONY: test-colab
# The tests of `make lab` and `make demo` are left out: they start the kit's own .venv, which this env is not.
test-colab:
	bash .ci/colab_env.sh $(PYTHON_COLAB) $(VENV_COLAB)
	$(VENV_COLAB)/bin/python -m pytest --deselect tests/test_run_notebooks.py::test_make_lab_starts_jupyterlab_also_as_root \
		--deselect tests/test_demo.py::test_make_demo_serves_the_page_on_loopback_on_the_port_of_demo_args

lab: setup
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS) notebooks

weights: setup
	$(BIN)/python scripts/fetch_weights.py $(if $(CACHE),--cache $(CACHE)) $(if $(WITH_BASE),--with-base)

colab:
	python3 scripts/stamp_colab.py $(REPO)

demo: setup
	$(BIN)/python -m cvkit.demo $(DEMO_ARGS)

# The browser tests (tests/test_demo_browser.py) drive the system's Chromium through Playwright (no browser download):
# $$CVKIT_CHROMIUM, else the first of these on the PATH. `make test` never installs anything: without a Chromium it
# skips those tests. This target installs Debian's package, for root; anyone else gets one line saying what to do.
BROWSERS := chromium chromium-browser google-chrome google-chrome-stable
browser:
	@for name in $(BROWSERS); do command -v $$name >/dev/null 2>&1 && exit 0; done; \
	if [ -n "$$CVKIT_CHROMIUM" ] && [ -x "$$CVKIT_CHROMIUM" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Chromium for the browser tests (apt-get install chromium)"; \
		apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; }; \
	else \
		echo "The browser tests need Chromium: install it (Debian: sudo make browser, or sudo apt-get install chromium) or set CVKIT_CHROMIUM to a Chromium or Chrome" >&2; \
		exit 1; \
	fi

student: setup
	$(BIN)/python scripts/make_student.py $(if $(REPO),--repo $(REPO)) $(if $(BRANCH),--branch $(BRANCH))

clean:
	rm -rf build runs notebooks/runs
