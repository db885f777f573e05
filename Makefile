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

# Debian packages the tests and the demo use (installed when running as root); g++-11 is the host
# compiler CUDA 11.8's nvcc accepts (make darknet-gpu); qemu-user-static + binfmt-support run the
# emulated Pi roots (make edge-arm64, edge-armhf), file checks their libmvnc.
APT_PACKAGES := dpkg-dev build-essential g++-11 libgl1 libglib2.0-0 chromium debootstrap rsync systemd \
	qemu-user-static binfmt-support file

.PHONY: help setup venv node apt darknet lint test test-fast bench clean pi-roots pi-root-arm64 test-emulated test-emulated-arm64

help: ## list targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

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

# Real darknet (pjreddie 61c9d02e, Debian's source package), built with OpenMP for the CPU, plus
# our patches (training_scripts/darknet/patches/): upstream's CPU backward_region_layer is
# commented out, so YOLOv2 cannot learn on CPU; and Debian's label-glyph path points at
# /usr/share/darknet, which only Debian's binary package installs (`detector test` needs them).
DARKNET_PATCHES := $(sort $(wildcard training_scripts/darknet/patches/*.patch))
$(DARKNET_BIN): $(DARKNET_PATCHES) | $(CACHE)/apt.stamp
	@mkdir -p $(DARKNET_DIR)
	rm -rf $(DARKNET_DIR)/src && mkdir -p $(DARKNET_DIR)/src
	cd $(DARKNET_DIR)/src && apt-get source -q darknet >/dev/null
	for p in $(DARKNET_PATCHES); do patch -s -d $$(ls -d $(DARKNET_DIR)/src/darknet-*/) -p1 < $$p || exit 1; done
	$(MAKE) -C $$(ls -d $(DARKNET_DIR)/src/darknet-*/) -j$$(nproc) OPENMP=1 OPTS="-Ofast -march=native" >$(DARKNET_DIR)/build.log 2>&1
	cp $$(ls -d $(DARKNET_DIR)/src/darknet-*/)darknet $@.tmp && mv -f $@.tmp $@

darknet: $(DARKNET_BIN) ## build CPU darknet from Debian's source package

# darknet's GPU build (AlexeyAB, pinned commit, from shared/vendor) through roles/darknet, on this
# machine without a GPU: CUDA 11.8 from Debian bookworm non-free + cuDNN 8.9 from PyPI, assembled in
# $(CUDA_LOCAL) (downloads cached in $(CACHE)/downloads/cuda); ARCH sm_70 (V100) + sm_86 (A10G).
VENDOR ?= $(CURDIR)/../shared/vendor
DARKNET_ARCHIVE ?= $(VENDOR)/darknet-alexeyab-59596d78.tar.gz
DARKNET_ARCHIVE_SHA256 ?= a05c88d2887f182b1e25c7d4873f5447d56b69b9027035ae8fe15fdff1af91a6
CUDA_LOCAL := $(CURDIR)/$(CACHE)/cuda-11.8
DARKNET_GPU_DIR := $(CURDIR)/$(CACHE)/darknet-gpu
DARKNET_GPU_ARCH ?= ["7.0","8.6"]
DARKNET_GPU_PLAYBOOK = ANSIBLE_CONFIG=$(CURDIR)/ansible/ansible.cfg $(VENV)/bin/ansible-playbook -i localhost, ansible/darknet-gpu.yml \
	-e darknet_archive=$(DARKNET_ARCHIVE) -e darknet_archive_sha256=$(DARKNET_ARCHIVE_SHA256)
.PHONY: cuda-toolkit darknet-gpu gpu-check
cuda-toolkit: venv apt ## CUDA 11.8 + cuDNN 8.9 from the registries into .cache/cuda-11.8 (cached)
	$(PY) -m training_scripts cuda-toolkit --out $(CUDA_LOCAL) --downloads $(CACHE)/downloads/cuda

darknet-gpu: cuda-toolkit ## AlexeyAB GPU=1 CUDNN=1 CUDNN_HALF=1 (sm_70+sm_86) via roles/darknet -> .cache/darknet-gpu/darknet
	$(DARKNET_GPU_PLAYBOOK) -e darknet_root=$(DARKNET_GPU_DIR) -e darknet_cuda_home=$(CUDA_LOCAL) \
	  -e '{"darknet_cuda_arch": $(DARKNET_GPU_ARCH)}' -e darknet_verify_gpu=false $(DARKNET_GPU_ARGS)

# On a host with an NVIDIA GPU and driver: the same playbook with ARCH from nvidia-smi and the GPU
# check on, then `training_scripts gpu-check` (27 classes, 416², GPU_CHECK_ITERATIONS of the gpu
# profile): images/s, GPU memory and utilisation, the exported bundle's parity -> $(GPU_CHECK_OUT).
# CUDA: GPU_CHECK_CUDA_HOME (a DLAMI: the matrix's CudaHome, e.g. /usr/local/cuda-12.3), else
# /usr/local/cuda when it has nvcc, else the registry toolkit of `make cuda-toolkit`.
GPU_CHECK_OUT ?= $(CURDIR)/gpu_check_out
GPU_CHECK_DIR := $(CURDIR)/$(CACHE)/darknet-gpu-check
GPU_CHECK_CUDA_HOME ?= $(shell test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda)
GPU_CHECK_ITERATIONS ?= 300
gpu-check: venv ## GPU host: build via roles/darknet (ARCH from nvidia-smi), train 27 cls 416², print images/s, memory, parity
	@command -v nvidia-smi >/dev/null || { echo "gpu-check: nvidia-smi not found: run it on a host with an NVIDIA GPU and driver" >&2; exit 2; }
	@cuda="$(GPU_CHECK_CUDA_HOME)"; \
	if [ -z "$$cuda" ]; then $(MAKE) --no-print-directory cuda-toolkit || exit 1; cuda=$(CUDA_LOCAL); fi; \
	$(DARKNET_GPU_PLAYBOOK) -e darknet_root=$(GPU_CHECK_DIR) -e darknet_cuda_home=$$cuda -e darknet_cuda_arch= \
	  $(DARKNET_GPU_ARGS) && \
	LD_LIBRARY_PATH=$$cuda/lib64$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH} $(PY) -m training_scripts gpu-check \
	  --darknet $(GPU_CHECK_DIR)/darknet --out $(GPU_CHECK_OUT) --iterations $(GPU_CHECK_ITERATIONS) $(GPU_CHECK_ARGS)

setup: apt venv node darknet ## everything the tests need

lint: venv ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The emulated Pi roots the tests unpack (tests/ansible_edge/test_emulated_pi.py): arm64 with the
# edge roles' Debian packages baked in, armhf plain minbase; cached in .cache/pi-<arch>/.
pi-root-arm64: venv apt
	$(PY) -m training_scripts edge-emulated --arch arm64 --cache $(CURDIR)/$(CACHE)/pi-arm64 --prepare-only layer
pi-roots: pi-root-arm64 ## cached emulated Pi roots for the tests (arm64 with the roles' packages, armhf minbase)
	$(PY) -m training_scripts edge-emulated --arch armhf --cache $(CURDIR)/$(CACHE)/pi-armhf --prepare-only minbase

# The emulated-Pi tests (tests/ansible_edge/test_emulated_pi.py, qemu-user) are their own targets:
# measured on a fresh 2-core machine, the arm64 root alone took 29 minutes beside the main suite
# (11 min debootstrap, 18 min package layer, both under qemu) and slowed the suite to about half
# speed, so `make test` with them would not fit CI's 60 minutes. `make test-emulated-arm64`: the
# arm64 Pi (edge.yml, the service, changed=0, refusals); `make test-emulated`: all of them (armhf
# and NCSDK 1.12 on arm64 too).
EMU_TESTS := tests/ansible_edge/test_emulated_pi.py
EMU_PYTEST = $(TEST_ENV) $(VENV)/bin/pytest -p no:cacheprovider --basetemp=$(CURDIR)/$(CACHE)/pytest-emulated $(EMU_TESTS)
TEST_ENV = DARKNET_BIN=$(CURDIR)/$(DARKNET_BIN) DARKNET_GPU_DIR=$(DARKNET_GPU_DIR) CUDA_LOCAL=$(CUDA_LOCAL) \
	DARKNET_ARCHIVE=$(DARKNET_ARCHIVE)
test: setup darknet-gpu lint ## lint + the test suite (what CI runs; the emulated Pis are test-emulated)
	$(TEST_ENV) $(VENV)/bin/pytest --ignore=$(EMU_TESTS)

test-emulated-arm64: setup pi-root-arm64 ## the emulated arm64 Pi tests (edge.yml, service, changed=0, refusals)
	$(EMU_PYTEST) -m "not emulated_full"

test-emulated: setup pi-roots ## all emulated Raspberry Pi tests (arm64 edge.yml + service, NCSDK 1.12 on arm64, armhf libmvnc)
	$(EMU_PYTEST)

test-fast: setup ## tests without the slow end-to-end ones
	DARKNET_BIN=$(CURDIR)/$(DARKNET_BIN) $(VENV)/bin/pytest -m "not slow"

# The embedded default, end to end on this machine: synthetic logos, darknet built from Debian's
# source through the role, real CPU training, selection, export, publish (ansible/train.yml with the
# local inventory), then the edge service on a synthetic video (ansible/edge.yml, OpenVINO CPU).
DEMO_OUT ?= $(CURDIR)/demo_out
DEMO_IMAGES ?= 500
DEMO_MAX_BATCHES ?= 2000
DEMO_MAX_MINUTES ?= 10
DEMO_PORT ?= 8090
DEMO_TRAIN_VARS = -e edgeyolo_root=$(DEMO_OUT)/train -e dataset_synth_images=$(DEMO_IMAGES) \
	-e dataset_synth_size=128x128 -e dataset_split=70,15,15 -e train_max_batches=$(DEMO_MAX_BATCHES) \
	-e train_segment=150 -e train_max_minutes=$(DEMO_MAX_MINUTES)
DEMO_PUBLISHED = $(DEMO_OUT)/train/published/yolov2-tiny-edgeyolo/latest.json
# The demo's bundle-signing key (Ed25519, made once): publish signs with it, the edge node trusts it.
DEMO_KEY_DIR = $(DEMO_OUT)/signing
DEMO_KEY = $(DEMO_KEY_DIR)/signing-key.pem
DEMO_PUBLIC_KEY = $(DEMO_KEY_DIR)/signing-key.pub.pem
.PHONY: demo demo-train demo-edge
demo: ## the whole pipeline locally (~20 min on 2 cores): train, select, export, serve; prints mAP, FPS, URL
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory demo-train demo-edge && \
	$(PY) -m training_scripts summary --published $(DEMO_PUBLISHED) --edge-url http://127.0.0.1:$(DEMO_PORT) \
	  --json $(DEMO_OUT)/summary.json && \
	echo "demo: done in $$(( $$(date +%s) - start )) s; live page: http://127.0.0.1:$(DEMO_PORT)/"

$(DEMO_KEY): | venv
	$(PY) -m training_scripts signing-key --out $(DEMO_KEY_DIR)

demo-train: venv apt ansible-collections $(DEMO_KEY) ## demo part 1: ansible/train.yml on this machine (DEMO_* knobs)
	EDGEYOLO_SIGN=file:$(DEMO_KEY) $(TRAIN_PLAYBOOK) $(DEMO_TRAIN_VARS) $(TRAIN_ARGS)

$(DEMO_OUT)/video.mp4: | venv
	$(PY) -m training_scripts synth --out $(DEMO_OUT)/video-src --classes 3 --images 4 --seed 1 \
	  --video $@ --frames 300

demo-edge: venv $(DEMO_OUT)/video.mp4 ## demo part 2: ansible/edge.yml with the published bundle on a synthetic video
	EDGE_BUNDLE=$$($(PY) -c 'import json,sys; print(json.load(open(sys.argv[1]))["path"])' $(DEMO_PUBLISHED)) \
	EDGE_VIDEO=$(DEMO_OUT)/video.mp4 EDGE_PORT=$(DEMO_PORT) EDGE_TRUSTED_KEYS=$(DEMO_PUBLIC_KEY) \
	$(MAKE) --no-print-directory edge

BENCH_OUT ?= bench_out
bench: setup ## one-run benchmark table (sgemm, export, edge FPS vs darknet, decode, evaluation) → $(BENCH_OUT)/bench.md
	DARKNET_BIN=$(CURDIR)/$(DARKNET_BIN) $(PY) -m training_scripts bench --out $(BENCH_OUT) $(BENCH_ARGS)

# Fault injection on the CPU smoke model (training_scripts/training/chaos.py): CHAOS_TRIALS crashes of
# `train` (SIGKILL at random moments, every third a simulated power cut that damages the newest
# checkpoint and tears the last metrics row), each resumed; then the final mAP against an uninterrupted
# run. `make test` runs a 3-trial version (tests/training/test_chaos.py).
CHAOS_OUT ?= $(CURDIR)/$(CACHE)/chaos
CHAOS_TRIALS ?= 10
CHAOS_ARGS ?=
.PHONY: chaos
chaos: venv darknet ## fault-injection run: kill/power-cut training CHAOS_TRIALS times, resume, print the summary line
	DARKNET_BIN=$(CURDIR)/$(DARKNET_BIN) $(PY) -m training_scripts chaos --out $(CHAOS_OUT) --trials $(CHAOS_TRIALS) $(CHAOS_ARGS)

clean: ## remove build outputs (keeps .venv)
	rm -rf $(CACHE)/darknet cdk.out .pytest_cache .ruff_cache

# Edge nodes (ansible/edge.yml). Default: this machine as the only node (the demo); for the
# Raspberry Pi fleet: make edge EDGE_INVENTORY=ansible/inventories/pis.yml
EDGE_INVENTORY ?= ansible/inventories/edge-local.yml
EDGE_ARGS ?=
.PHONY: edge
edge: venv ## deploy the edge service with ansible/edge.yml (EDGE_INVENTORY, EDGE_BUNDLE, EDGE_VIDEO)
	ANSIBLE_CONFIG=$(CURDIR)/ansible/ansible.cfg $(VENV)/bin/ansible-playbook -i $(EDGE_INVENTORY) ansible/edge.yml $(EDGE_ARGS)

# Emulated Raspberry Pis (qemu-user): ansible/edge.yml with the real roles into a Debian bookworm
# arm64 (Pi OS 64-bit) or armhf (Pi OS 32-bit) root cached in .cache/pi-<arch>/, libmvnc built there
# from shared/vendor's NCSDK API sources, the published bundle archive pinned by its sha256, the
# service run on the demo video; prints one summary line and stops it. Without a published bundle it
# first runs demo-train for EDGE_EMU_TRAIN_MINUTES. Root only (chroot, mounts).
EDGE_EMU_PUBLISHED ?= $(DEMO_PUBLISHED)
EDGE_EMU_VIDEO ?= $(DEMO_OUT)/video.mp4
EDGE_EMU_TRAIN_MINUTES ?= 3
EDGE_EMU_ARGS ?=
.PHONY: edge-arm64 edge-armhf
define EDGE_EMU_RECIPE
@test -f $(EDGE_EMU_PUBLISHED) || $(MAKE) --no-print-directory demo-train DEMO_MAX_MINUTES=$(EDGE_EMU_TRAIN_MINUTES)
$(PY) -m training_scripts edge-emulated --arch $(1) --published $(EDGE_EMU_PUBLISHED) --video $(EDGE_EMU_VIDEO) \
  --cache $(CURDIR)/$(CACHE)/pi-$(1) --trusted-key $(DEMO_PUBLIC_KEY) $(EDGE_EMU_ARGS)
endef
edge-arm64: venv apt ansible-collections $(DEMO_OUT)/video.mp4 ## emulated Pi OS 64-bit: edge.yml into a qemu arm64 root, serve, one summary line
	$(call EDGE_EMU_RECIPE,arm64)
edge-armhf: venv apt ansible-collections $(DEMO_OUT)/video.mp4 ## emulated Pi OS 32-bit (armhf, NCSDK v1): the same under qemu-arm
	$(call EDGE_EMU_RECIPE,armhf) --ncsdk-api 1

# --- AWS: CDK stacks, teardown, status (cdk/README.md). Extra CDK flags: CDK_ARGS="-c stage=exp1". ---
CDK := node_modules/.bin/cdk
CDK_ARGS ?=
TEARDOWN_ARGS ?=
STATUS_ARGS ?=
.PHONY: synth deploy destroy teardown status

synth: venv node ## synthesize both stacks into cdk.out + cdk-nag report (no AWS credentials needed)
	$(CDK) synth --quiet $(CDK_ARGS)

deploy: venv node ## cdk deploy --all with the pinned CLI (credentials, bootstrapped account); AMI from the GPU matrix
	params=$$($(PY) -m cdk.ami $(CDK_ARGS)) && $(CDK) deploy --all --require-approval broadening $(CDK_ARGS) $$params

destroy: venv node ## cdk destroy --all (the artifact bucket is retained unless the stage is throwaway)
	$(CDK) destroy --all $(CDK_ARGS)

teardown: venv ## stop GPU billing: sync checkpoints, delete the training stack, sweep by tags (TEARDOWN_ARGS=--help)
	$(PY) -m cdk.billing.teardown $(TEARDOWN_ARGS)

status: venv ## what is running, since when, and its hourly cost (STATUS_ARGS=--help)
	$(PY) -m cdk.billing.status $(STATUS_ARGS)

# Training host (ansible/train.yml). TRAIN_INVENTORY=local (this machine, CPU smoke run; the
# default) or aws (the CDK stack's GPU host via SSM; EDGEYOLO_STAGE, AWS_REGION,
# EDGEYOLO_DATASET_SHA256, EDGEYOLO_PRETRAINED_SHA256). TRAIN_ARGS go to ansible-playbook.
TRAIN_INVENTORY ?= local
TRAIN_ARGS ?=
TRAIN_PLAYBOOK := ANSIBLE_CONFIG=$(CURDIR)/ansible/ansible.cfg $(VENV)/bin/ansible-playbook -i ansible/inventories/$(TRAIN_INVENTORY) ansible/train.yml

.PHONY: train train-status ansible-collections ansible-lint
ansible-collections: venv ## check the pinned Ansible collections (bundled in the ansible package; no Galaxy)
	$(PY) ansible/check_collections.py

ansible-lint: venv ansible-collections ## ansible-lint --profile production over ansible/ and roles/
	ANSIBLE_CONFIG=$(CURDIR)/ansible/ansible.cfg $(VENV)/bin/ansible-lint -c ansible/.ansible-lint ansible roles

train: venv apt ansible-collections ## build darknet, prepare data, train, select, export, publish (TRAIN_INVENTORY, TRAIN_ARGS)
	$(TRAIN_PLAYBOOK) $(TRAIN_ARGS)

train-status: venv ## iteration, loss, ETA and loss plot of the current training run (TRAIN_INVENTORY)
	$(TRAIN_PLAYBOOK) --tags train-status $(TRAIN_ARGS)
