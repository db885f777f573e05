# One entry point for people and CI. `make test` and `make demo` install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CACHE := .cache
DARKNET_DIR := $(CACHE)/darknet
DARKNET_BIN := $(DARKNET_DIR)/darknet
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Debian packages the tests and the demo use (installed when running as root).
APT_PACKAGES := dpkg-dev build-essential libgl1 libglib2.0-0 chromium debootstrap rsync

.PHONY: help setup venv node apt darknet lint test test-fast clean

help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(CACHE)/apt.stamp:
	@mkdir -p $(CACHE)
	@if [ "$$(id -u)" = 0 ]; then \
	  if [ -f /etc/apt/sources.list.d/debian.sources ] && ! grep -q 'deb-src' /etc/apt/sources.list.d/debian.sources; then \
	    sed -i 's/^Types: deb$$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources; fi; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(APT_PACKAGES); \
	else echo "not root: assuming Debian packages are present: $(APT_PACKAGES)"; fi
	@touch $@

apt: $(CACHE)/apt.stamp ## install Debian packages (root only)

$(VENV)/.stamp: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.stamp ## create .venv with pinned requirements

node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

node: node_modules/.stamp ## install the pinned AWS CDK CLI

# Real darknet (pjreddie 61c9d02e, Debian's source package), built with OpenMP for the CPU.
$(DARKNET_BIN): | $(CACHE)/apt.stamp
	@mkdir -p $(DARKNET_DIR)
	rm -rf $(DARKNET_DIR)/src && mkdir -p $(DARKNET_DIR)/src
	cd $(DARKNET_DIR)/src && apt-get source -q darknet >/dev/null
	$(MAKE) -C $$(ls -d $(DARKNET_DIR)/src/darknet-*/) -j$$(nproc) OPENMP=1 OPTS="-Ofast -march=native" >$(DARKNET_DIR)/build.log 2>&1
	cp $$(ls -d $(DARKNET_DIR)/src/darknet-*/)darknet $@

darknet: $(DARKNET_BIN) ## build CPU darknet from Debian's source package

setup: apt venv node darknet ## everything the tests need

lint: venv ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup lint ## lint + the whole test suite (what CI runs)
	DARKNET_BIN=$(CURDIR)/$(DARKNET_BIN) $(VENV)/bin/pytest

test-fast: setup ## tests without the slow end-to-end ones
	DARKNET_BIN=$(CURDIR)/$(DARKNET_BIN) $(VENV)/bin/pytest -m "not slow"

clean: ## remove build outputs (keeps .venv)
	rm -rf $(CACHE)/darknet cdk.out .pytest_cache .ruff_cache
