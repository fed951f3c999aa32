# Shared by the layer Makefiles (included, never run on its own).
# Built by `sam build` (Metadata BuildMethod: makefile), without Docker: pip installs the
# manylinux wheels for the template's runtime and architecture, whatever this machine is.
# Defaults match template.yaml (python3.13, arm64); `make size` checks the result against it.
PYTHON_VERSION ?= 3.13
ARCH ?= aarch64
PIP ?= python3 -m pip
SITE := $(ARTIFACTS_DIR)/python
# Bytecode for the *runtime's* Python: /opt is read-only on Lambda, so without it every cold
# start compiles from source (~0.4 s). unchecked-hash pycs stay valid whatever zip does to mtimes.
PYC_PYTHON ?= $(shell for p in python$(PYTHON_VERSION) $$HOME/.pyenv/versions/$(PYTHON_VERSION)*/bin/python$(PYTHON_VERSION); do \
	$$p -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(PYTHON_VERSION)".split("."))))' 2>/dev/null && echo $$p && break; done)

define install_wheels
	$(PIP) install --quiet --disable-pip-version-check --no-deps --no-compile \
		--only-binary=:all: --implementation cp --python-version $(PYTHON_VERSION) \
		--platform manylinux_2_28_$(ARCH) --platform manylinux2014_$(ARCH) \
		--platform manylinux_2_17_$(ARCH) --target "$(SITE)" -r requirements.txt
endef

# Safe trimming only: tests, headers, sources, stubs and scripts. Shared libraries are left as
# shipped: stripping bundled OpenBLAS broke scipy, and llvm-strip 14 made numpy's extension
# unloadable ("ELF load command address/offset not page-aligned", tests/integration/
# test_layer_recipes.py caught it); the few MB are not worth a broken import.
define trim_and_compile
	rm -rf "$(SITE)/bin"
	# Only "tests": packages import their "testing" modules at run time (sklearn does).
	find "$(SITE)" -depth -type d \( -name tests -o -name __pycache__ \) -exec rm -rf {} +
	find "$(SITE)" -type f \( -name "*.pyi" -o -name "*.h" -o -name "*.hpp" -o -name "*.c" \
		-o -name "*.cpp" -o -name "*.pyx" -o -name "*.pxd" \) -delete
	find "$(SITE)" -type d -name include -path "*/_core/include" -prune -exec rm -rf {} +
	@if [ -n "$(PYC_PYTHON)" ]; then \
		$(PYC_PYTHON) -m compileall -q -j 0 --invalidation-mode unchecked-hash "$(SITE)" >/dev/null; \
	else echo "warning: no python$(PYTHON_VERSION) found: layer ships without bytecode (slower cold starts)"; fi
endef

