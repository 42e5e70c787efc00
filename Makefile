# ngx_sendgrid_integrations_module
#
#   make            install what is missing, build the dynamic module
#   make run        the gateway in front of a local mock SendGrid
#   make test       every test: unit, fuzz, t/ against every nginx of
#                   the version matrix (Debian 12's and 13's, the
#                   nginx-*.tar.gz in NGINX_SOURCES, two sanitizer builds),
#                   part of it under valgrind, and the Debian package on a
#                   clean Debian chroot
#   make deb        the Debian package, in build/deb/
#   make bench      what the module costs against plain proxy_pass
#   make soak       10^6 mixed requests with reloads (not part of make test)
#
# See README.md for the rest.

SHELL      := /bin/bash
BUILD      := build
MOD        := ngx_sendgrid_integrations_module
SG_SRCS    := $(wildcard $(MOD)/sg_*.c)
SG_HDRS    := $(wildcard $(MOD)/*.h)
MOD_SRCS   := $(wildcard $(MOD)/*.c) $(SG_HDRS) config

UNIT_SRCS  := $(wildcard t/unit/test_*.c)
UNIT_BINS  := $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))
FUZZ_SRCS  := $(wildcard fuzz/fuzz_*.c)
FUZZ_BINS  := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))

# the plain-C parts are held to -Wall -Wextra -Werror with gcc and clang
WARN       := -Wall -Wextra -Werror -Wpointer-arith -Wshadow
UNIT_CC    ?= gcc
UNIT_FLAGS := -g -O1 $(WARN) -fsanitize=address,undefined \
              -fno-sanitize-recover=all -fno-omit-frame-pointer
SG_LIBS    := -ljansson -lz
FUZZ_FLAGS := -g -O1 $(WARN) -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=all
FUZZ_SECONDS ?= 60
FUZZ_LONG_SECONDS ?= 600

# the body validator for teams' CI: the module's validator, optimized
VALIDATOR  := $(BUILD)/sendgrid-integrations-validate
VALIDATOR_SRCS := tools/sendgrid-integrations-validate.c \
              $(MOD)/sg_body.c $(MOD)/sg_json.c

PROVE      := prove -I t/lib --timer
TESTS      ?= t/*.t
# test files spend most of their time waiting on sockets and timers: four
# at once keep two cores busy
JOBS       ?= 4

# what `make valgrind` runs: forwarding, refusals, bodies in memory, in
# temporary files and chunked, report_only, error bodies (gzip included),
# reload, and the faults of the upstream, of its error bodies and of
# clients
VALGRIND_TESTS ?= t/10-forward.t t/20-allowlist.t t/41-reload.t \
                  t/50-errlog.t t/61-body-transport.t t/62-body-modes.t \
                  t/80-faults-upstream.t t/81-faults-error-bodies.t \
                  t/82-faults-client.t
VALGRIND   := valgrind --tool=memcheck --leak-check=full \
              --show-leak-kinds=definite --errors-for-leak-kinds=definite \
              --num-callers=40 --error-limit=no --gen-suppressions=all \
              --keep-debuginfo=yes \
              --suppressions=$(CURDIR)/t/valgrind.supp \
              --log-file=%%DIR%%/logs/valgrind.%p

# nginx source tarballs (nginx-*.tar.gz) for the version matrix; relative
# paths are relative to the repository's root
NGINX_SOURCES ?= ../shared/nginx
# the nginx of the matrix to test: an extended regex on their names as
# build/matrix/list gives them (e.g. 1.31.4, -asan$$); empty: all
VERSIONS   ?=

.PHONY: all module static asan deps unit fuzz fuzz-run fuzz-long deb \
        validator matrix test test-dynamic test-asan test-matrix test-deb \
        valgrind run bench soak clean

all: module

deps:
	@scripts/install-deps

module: deps
	@scripts/build-nginx dynamic

static: deps
	@scripts/build-nginx static

asan: deps
	@scripts/build-nginx asan

# libnginx-mod-http-sendgrid-integrations_<version>_<arch>.deb, checked
# by lintian
deb: deps
	@scripts/build-deb

# every nginx of the version matrix, listed in build/matrix/list
matrix: deps
	@scripts/build-nginx matrix $(NGINX_SOURCES)

$(BUILD)/unit/%: t/unit/%.c $(wildcard t/unit/*.h) $(SG_SRCS) $(SG_HDRS)
	@mkdir -p $(dir $@)
	$(UNIT_CC) $(UNIT_FLAGS) -o $@ $< $(SG_SRCS) $(SG_LIBS)

unit: deps $(UNIT_BINS)
	$(PROVE) --exec '' $(UNIT_BINS)

$(BUILD)/fuzz/%: fuzz/%.c $(wildcard t/unit/*.h) $(SG_SRCS) $(SG_HDRS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -o $@ $< $(SG_SRCS) $(SG_LIBS)

fuzz: deps $(FUZZ_BINS)

$(VALIDATOR): $(VALIDATOR_SRCS) $(SG_HDRS)
	@mkdir -p $(dir $@)
	$(UNIT_CC) -O2 $(WARN) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ \
	    $(VALIDATOR_SRCS)

validator: deps $(VALIDATOR)

# each target runs FUZZ_SECONDS from its corpus in fuzz/corpus/; new
# inputs go to a scratch directory so the kept corpus stays reviewed
fuzz-run: fuzz
	@scripts/fuzz $(FUZZ_SECONDS) $(FUZZ_BINS)

# each target FUZZ_LONG_SECONDS, one after the other; what they find that
# reaches new code is merged, minimized, into fuzz/corpus/ to be committed
fuzz-long: fuzz
	@scripts/fuzz --merge $(FUZZ_LONG_SECONDS) $(FUZZ_BINS)

# the suite against Debian's nginx with the dynamic module
test-dynamic: module validator
	$(PROVE) -j$(JOBS) $(TESTS)

# the same suite against nginx built with AddressSanitizer and UBSan
test-asan: asan validator
	TEST_NGINX_BINARY=$(CURDIR)/$(BUILD)/asan/nginx TEST_NGINX_MODULE= \
	    $(PROVE) -j$(JOBS) $(TESTS)

# that part of the suite against Debian's nginx and the dynamic module
# under valgrind's memcheck, master and workers; each file fails on any
# invalid read or write and on any leak or uninitialised value in the
# module (t/valgrind.supp: what is not the module's); two files at once,
# as valgrind keeps a core busy
valgrind: module
	TEST_NGINX_WRAPPER="$(VALGRIND)" $(PROVE) -j2 $(VALGRIND_TESTS)

# the package installed, serving, removed and purged in a debootstrapped
# chroot of this machine's Debian release (root, and Debian's mirror)
test-deb: deb
	$(PROVE) t/pkg/install.t

# the suite once against each nginx of the matrix (those VERSIONS
# matches); every one runs, then the versions that failed are named
test-matrix: matrix validator
	@failed=; ran=0; \
	while read -r name binary module; do \
	    [ -z '$(VERSIONS)' ] || echo "$$name" | grep -Eq -- '$(VERSIONS)' \
	        || continue; \
	    [ "$$module" = - ] && module=; \
	    echo "== t/ against nginx $$name: $$binary $$module"; \
	    TEST_NGINX_BINARY=$$binary TEST_NGINX_MODULE=$$module \
	        $(PROVE) -j$(JOBS) $(TESTS) || failed="$$failed $$name"; \
	    ran=$$((ran + 1)); \
	done < $(BUILD)/matrix/list; \
	[ $$ran -gt 0 ] || { echo "no nginx matches VERSIONS=$(VERSIONS)"; exit 1; }; \
	[ -z "$$failed" ] || { echo "t/ failed on nginx:$$failed"; exit 1; }

# every test: plain-C units (gcc and clang), the suite on every nginx of
# the matrix, part of it under valgrind, the package, the fuzzers
test: deps
	@date +'== %T unit'
	$(MAKE) unit
	$(MAKE) unit UNIT_CC=clang BUILD=$(BUILD)/clang
	@date +'== %T matrix'
	$(MAKE) test-matrix
	@date +'== %T valgrind'
	$(MAKE) valgrind
	@date +'== %T package'
	$(MAKE) test-deb
	@date +'== %T fuzz'
	$(MAKE) fuzz-run
	@date +'== %T done'

# the gateway on 127.0.0.1:8080 in front of a local mock SendGrid
run: module
	@scripts/run

bench: module
	@bench/run

# the gateway under 10^6 mixed HTTP/1.1 and HTTP/2 requests, reloaded
# every few seconds: memory, statuses and the error log (bench/soak)
soak: module
	@bench/soak

clean:
	rm -rf $(BUILD)
