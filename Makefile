# ngx_sendgrid_integrations_module
#
#   make            install what is missing, build the dynamic module
#   make run        the gateway in front of a local mock SendGrid
#   make test       every test: unit, fuzz, and t/ against the dynamic
#                   module in Debian's nginx and against a sanitizer build
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

# the body validator for teams' CI: the module's validator, optimized
VALIDATOR  := $(BUILD)/sendgrid-integrations-validate
VALIDATOR_SRCS := tools/sendgrid-integrations-validate.c \
              $(MOD)/sg_body.c $(MOD)/sg_json.c

PROVE      := prove -I t/lib --timer
TESTS      ?= t/*.t
JOBS       ?= 2

.PHONY: all module static asan deps unit fuzz fuzz-run validator \
        test test-dynamic test-asan run bench clean

all: module

deps:
	@scripts/install-deps

module: deps
	@scripts/build-nginx dynamic

static: deps
	@scripts/build-nginx static

asan: deps
	@scripts/build-nginx asan

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
	@set -e; for f in $(FUZZ_BINS); do \
	    name=$$(basename $$f); \
	    scratch=$(BUILD)/fuzz/corpus-$$name; mkdir -p $$scratch; \
	    dict=fuzz/$${name#fuzz_}.dict; \
	    [ -f $$dict ] && dict=-dict=$$dict || dict=; \
	    echo "fuzz: $$name for $(FUZZ_SECONDS)s"; \
	    $$f $$dict -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=$(BUILD)/fuzz/$$name- \
	        $$scratch fuzz/corpus/$$name 2>$(BUILD)/fuzz/$$name.log \
	    || { tail -50 $(BUILD)/fuzz/$$name.log; exit 1; }; \
	    grep -E '^stat::number_of_executed_units' $(BUILD)/fuzz/$$name.log; \
	done

# the suite against Debian's nginx with the dynamic module
test-dynamic: module validator
	$(PROVE) -j$(JOBS) $(TESTS)

# the same suite against nginx built with AddressSanitizer and UBSan
test-asan: asan validator
	TEST_NGINX_BINARY=$(CURDIR)/$(BUILD)/asan/nginx TEST_NGINX_MODULE= \
	    $(PROVE) -j$(JOBS) $(TESTS)

# every test: plain-C units (gcc and clang), the suite twice, the fuzzers
test: deps
	$(MAKE) unit
	$(MAKE) unit UNIT_CC=clang BUILD=$(BUILD)/clang
	$(MAKE) test-dynamic
	$(MAKE) static
	$(MAKE) test-asan
	$(MAKE) fuzz-run

# the gateway on 127.0.0.1:8080 in front of a local mock SendGrid
run: module
	@scripts/run

bench: module
	@bench/run

clean:
	rm -rf $(BUILD)
