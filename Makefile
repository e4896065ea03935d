# facestyle: one command to run the app, one to test it. Both create .venv when missing and
# re-install only when pyproject.toml changes (stamp files), so a second run starts fast.

PYTHON    ?= python3.11
VENV      ?= .venv
BIN       := $(VENV)/bin
PY        := $(BIN)/python
PIP       := $(PY) -m pip
# The torch build this machine keeps on disk; override on other machines, e.g. TORCH_SPEC=torch
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
PYTEST_ARGS ?=

.PHONY: run test bench dist lint clean screenshot

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip >/dev/null

$(VENV)/.stamp-torch: | $(PY)
	$(PIP) install $(TORCH_SPEC)
	touch $@

$(VENV)/.stamp-run: pyproject.toml $(VENV)/.stamp-torch
	$(PIP) install -e .
	touch $@

$(VENV)/.stamp-test: pyproject.toml $(VENV)/.stamp-run
	$(PIP) install -e '.[test]'
	touch $@

$(VENV)/.stamp-dist: pyproject.toml $(VENV)/.stamp-run
	$(PIP) install -e '.[dist]'
	touch $@

run: $(VENV)/.stamp-run
	$(BIN)/facestyle

test: $(VENV)/.stamp-test
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.stamp-test
	$(BIN)/ruff check desktop tests bench scripts
	$(BIN)/lint-imports

bench: $(VENV)/.stamp-test
	@set -e; for script in bench/*.py; do [ -e "$$script" ] || continue; \
		echo "== $$script"; QT_QPA_PLATFORM=offscreen $(PY) $$script; done

dist: $(VENV)/.stamp-dist
	$(BIN)/pyinstaller --noconfirm --clean build.spec

# The README's screenshots, of the app at work (needs ../shared/data for the clip and images).
SHARED_DATA ?= ../shared/data
screenshot: $(VENV)/.stamp-test
	FACESTYLE_SHARED_DATA=$(SHARED_DATA) QT_QPA_PLATFORM=offscreen PYTHONPATH=. \
		$(PY) scripts/checkin_screenshots.py /tmp/facestyle-shots
	cp /tmp/facestyle-shots/checkin-live.png docs/screenshot-checkin.png
	FACESTYLE_SHARED_DATA=$(SHARED_DATA) QT_QPA_PLATFORM=offscreen PYTHONPATH=. \
		$(PY) scripts/style_screenshot.py docs/screenshot-style.png --size 384 --at 50 --history 20
	QT_QPA_PLATFORM=offscreen PYTHONPATH=. $(PY) scripts/model_page_screenshot.py docs/screenshot-model.png
	FACESTYLE_SHARED_DATA=$(SHARED_DATA) QT_QPA_PLATFORM=offscreen PYTHONPATH=. \
		$(PY) scripts/explore_screenshot.py docs/screenshot-explore.png --view compare
	$(BIN)/facestyle explore top-patches $(SHARED_DATA) --layer relu5_1 --units 0-7 --cell 48 \
		--sheet docs/explore-sheet-relu5_1.png --quiet

clean:
	rm -rf build dist .pytest_cache .ruff_cache
