# Convenience front end to the CMake build.
#
#   make run     build and run socketd in the foreground with config/socketd.conf
#   make check   build and run every test, plain and with ASan+UBSan
#                (and, with CI=true, make fuzz as well)
#   make fuzz    run each libFuzzer target in fuzz/ for FUZZ_SECONDS (60)
#   make check-tsan      the suite under ThreadSanitizer
#   make check-valgrind  the integration suite with socketd under memcheck
#   make lint            clang-format, cppcheck and clang-tidy
#   (CI=true make check runs all of these too)
#
# All install missing build dependencies first (Debian/Ubuntu, apt-get).

BUILD      ?= build
BUILD_SAN  ?= build-sanitize
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
DEB_DEPS    = cmake make gcc pkg-config libconfig-dev libssl-dev libcmocka-dev \
              mandoc man-db openssl
# python/: the client package's pytest suite and mypy --strict (CTest
# label python), with Debian's Python 3.11.
DEB_DEPS   += python3 python3-pytest mypy
# tests/ops: socketd behind a live HAProxy and scraped by a live
# Prometheus (integration.ops_*), and promtool for test_admin.  In CI
# (CI=true) always; locally those tests skip when the binaries are absent
# (SOCKETD_OPS_TEST=1 installs them).  Debian's packages start no
# service in a container without systemd.
OPS_DEPS    = haproxy prometheus
ifneq ($(filter true,$(CI))$(filter 1,$(SOCKETD_OPS_TEST)),)
DEB_DEPS   += $(OPS_DEPS)
endif
# tests/packaging: building and linting the .deb, rpmlint (which cannot
# parse a spec file without rpm, a package it only recommends),
# systemd-analyze (in the systemd package; installing it does not make it
# PID 1).  Only where the .deb test runs: in CI (CI=true) or with
# SOCKETD_DEB_TEST=1.
PKG_DEPS    = build-essential debhelper dpkg-dev fakeroot lintian \
              libsystemd-dev rpmlint rpm systemd dh-python \
              pybuild-plugin-pyproject python3-all python3-setuptools \
              python3-wheel
ifneq ($(filter true,$(CI))$(filter 1,$(SOCKETD_DEB_TEST)),)
DEB_DEPS   += $(PKG_DEPS)
endif
# fuzz/: clang and libFuzzer (in libclang-rt-14-dev).  For make fuzz, and in
# CI, where make check runs make fuzz too.
FUZZ_DEPS   = clang libclang-rt-14-dev
ifneq ($(filter true,$(CI))$(filter fuzz,$(MAKECMDGOALS)),)
DEB_DEPS   += $(FUZZ_DEPS)
endif
# Static analysis (make lint, and in CI).
LINT_DEPS   = clang-format clang-tidy cppcheck valgrind
ifneq ($(filter true,$(CI))$(filter lint check-valgrind,$(MAKECMDGOALS)),)
DEB_DEPS   += $(LINT_DEPS)
endif
BUILD_TSAN   ?= build-tsan
BUILD_FUZZ   ?= build-fuzz
FUZZ_SECONDS ?= 60
CMAKE_FLAGS = -DSOCKETD_WERROR=ON -DCMAKE_EXPORT_COMPILE_COMMANDS=ON

.PHONY: all deps build run check check-plain check-sanitize check-tsan \
    check-valgrind lint fuzz format clean

all: build

deps:
	@missing=""; \
	for p in $(DEB_DEPS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | \
		    grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing build dependencies:$$missing"; \
		sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq \
		    --no-install-recommends $$missing; \
	fi

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/daemon/socketd -c config/socketd.conf

check-plain: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

check-sanitize: deps
	cmake -S . -B $(BUILD_SAN) $(CMAKE_FLAGS) -DSOCKETD_SANITIZE=ON \
	    -DCMAKE_BUILD_TYPE=Debug
	cmake --build $(BUILD_SAN) -j $(JOBS)
	ctest --test-dir $(BUILD_SAN) --output-on-failure -j $(JOBS)

# Each target in parallel for FUZZ_SECONDS; a crash fails and leaves its
# input in fuzz/crashes-<name>/ (fuzz/run.sh).
fuzz: deps
	cmake -S . -B $(BUILD_FUZZ) $(CMAKE_FLAGS) -DCMAKE_C_COMPILER=clang \
	    -DSOCKETD_FUZZ=ON -DBUILD_TESTING=OFF
	FUZZ_SECONDS=$(FUZZ_SECONDS) cmake --build $(BUILD_FUZZ) -j $(JOBS) \
	    --target fuzz-run

# ThreadSanitizer: the pool, the hand-off queue, reload and shutdown are
# where races would hide.  Suppressions (with reasons) in tests/tsan.supp.
check-tsan: deps
	cmake -S . -B $(BUILD_TSAN) $(CMAKE_FLAGS) -DSOCKETD_TSAN=ON \
	    -DCMAKE_BUILD_TYPE=Debug
	cmake --build $(BUILD_TSAN) -j $(JOBS)
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 \
	    suppressions=$(CURDIR)/tests/tsan.supp" \
	    ctest --test-dir $(BUILD_TSAN) --output-on-failure -j $(JOBS) \
	    -LE 'packaging|bench'

# The whole integration suite with the daemon under valgrind memcheck
# (the harness fails a test whose daemon log has a memcheck report).  The
# latency comparison of the slow-sender test only reports under valgrind,
# whose 20-50x slowdown it would otherwise measure.
check-valgrind: build
	SOCKETD_IT_VALGRIND=1 ctest --test-dir $(BUILD) --output-on-failure \
	    -L integration

lint: build
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')
	cppcheck --enable=warning,performance,portability --error-exitcode=1 \
	    --inline-suppr --quiet -D__GNUC__ -D_POSIX_C_SOURCE=200809L \
	    -I proto -I pool -I config -I daemon -I client -I include \
	    -I metrics proto pool config daemon client metrics
	clang-tidy -p $(BUILD) --quiet $$(git ls-files 'proto/*.c' \
	    'pool/*.c' 'config/*.c' 'daemon/*.c' 'client/*.c' 'metrics/*.c')

check: check-plain check-sanitize \
    $(if $(filter true,$(CI)),check-tsan check-valgrind lint fuzz)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_TSAN) $(BUILD_FUZZ)
