# Every target creates/updates the virtual environment itself.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv run demo test lint bench deps-debian clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the tests use: promtool/prometheus, amtool (alertmanager), blackbox_exporter (bench),
# chromium + its Japanese locale (date fields as patients see them) + CJK fonts, Dovecot (the mirror's IMAP),
# nginx and Caddy (the static fallback behind a real reverse proxy), PostgreSQL (the store on a database
# server; the tests start their own throwaway server, tests/pg_support.py).
deps-debian:
	@missing=""; \
	for p in prometheus prometheus-alertmanager prometheus-blackbox-exporter chromium chromium-l10n fonts-noto-cjk dovecot-imapd nginx-light caddy postgresql; do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  sudo=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing >/dev/null; fi

CONFIG ?= portalguard.yaml
run: $(STAMP)
	$(VENV)/bin/portalguard -c $(CONFIG) run

demo: $(STAMP)
	$(VENV)/bin/portalguard demo

# pytest exits 5 when it collected nothing: a run that tested nothing is a failure, said as such.
test: $(STAMP) deps-debian
	@$(PY) -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP) deps-debian
	$(PY) bench/probe_throughput.py
	$(PY) bench/time_to_failover.py
	$(PY) bench/fallback_load.py
	$(PY) bench/store_lock.py
	$(PY) bench/takeover.py

clean:
	rm -rf $(VENV) .pytest_cache
