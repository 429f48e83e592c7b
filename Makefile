# pg_causal: a PGXS build of C++ against PostgreSQL 15, plus the project's
# targets. `make test` and `make bench` install what they need first.

EXTENSION   = pg_causal
EXTVERSION  = 0.4.0
MODULE_big  = pg_causal

CORE_SRCS      = $(wildcard src/core/*.cpp)
# The core's rules that only causalctl applies (the schema changes it
# refuses): linked into causalctl, not into the server.
CAUSALCTL_CORE = src/core/schema_change.cpp
EXTENSION_SRCS = $(wildcard extension/*.cpp extension/*/*.cpp)
OBJS = $(filter-out $(CAUSALCTL_CORE:.cpp=.o),$(CORE_SRCS:.cpp=.o)) $(EXTENSION_SRCS:.cpp=.o)

# One file per topic in sql/, concatenated in this order into the install script.
SQL_TOPICS = sql/schema.sql sql/hlc_type.sql sql/clock.sql sql/cockroach.sql sql/regions.sql \
             sql/messages.sql sql/enable.sql sql/merge.sql sql/failover.sql sql/publications.sql \
             sql/replication.sql sql/guard.sql
# ALTER EXTENSION pg_causal UPDATE: from each version with a step in
# sql/updates/steps/ straight to this one, generated (tools/gen-update: the
# steps' schema deltas, the topics' current functions, the steps' data
# migrations). Frozen: the hand-written steps from before (0.2.0 to 0.3.0),
# and the earlier versions' install scripts, which the tests update from.
UPDATE_STEPS = $(filter-out %.post.sql,$(wildcard sql/updates/steps/*--*.sql))
UPDATE_FROM  = $(foreach step,$(UPDATE_STEPS),$(firstword $(subst --, ,$(basename $(notdir $(step))))))
UPDATE_SCRIPTS = $(foreach version,$(UPDATE_FROM),$(EXTENSION)--$(version)--$(EXTVERSION).sql)
DATA_built = $(EXTENSION)--$(EXTVERSION).sql $(UPDATE_SCRIPTS)
DATA = $(wildcard sql/updates/$(EXTENSION)--*.sql)

REGRESS      = hlc_type hlc_errors hlc_operators search_path clock cockroach messages merge
REGRESS_OPTS = --inputdir=regress --outputdir=regress

PG_CONFIG ?= pg_config
# -MMD -MP: each object also depends on the headers it includes (the .d
# files read below), so a changed struct rebuilds every object that uses it.
PG_CXXFLAGS = -std=c++17 -Wno-register -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -MMD -MP
# extension/'s subsystems include each other as "table/store.hpp", and the
# core as "core/hlc.hpp".
PG_CPPFLAGS = -Iextension -Isrc
SHLIB_LINK  = -lstdc++
# No LLVM bitcode: JIT-inlining these small functions gains nothing, and it
# would make clang a build dependency.
override with_llvm = no

# On a fresh machine pg_config arrives with `make deps`; until then only the
# targets that install it can run.
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
endif

-include $(OBJS:.o=.d)

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_TOPICS)
	cat $^ > $@

$(UPDATE_SCRIPTS): $(EXTENSION)--%--$(EXTVERSION).sql: tools/gen-update $(SQL_TOPICS) $(wildcard sql/updates/steps/*.sql)
	tools/gen-update $* $(EXTVERSION) $(SQL_TOPICS) > $@

.PHONY: deps unit fuzz test bench demo clean-test tools install-tools deb

# The tools beside the extension: causalctl (libpq), the WAN proxy the tests
# and the demo route replication through (Boost.Asio), and the latency probe
# of the benchmarks and the demo. Built by `all`; `make install` puts
# causalctl and causal-wan in TOOL_BINDIR, on PATH (the Debian package: /usr/bin).
TOOL_CXXFLAGS = -std=c++17 -O2 -g -Wall -Wextra -pthread
WAN_SRCS = $(wildcard src/wan/*.cpp)
CAUSALCTL_SRCS = $(wildcard src/causalctl/*.cpp)
# causalctl applies rules of src/core (the majority, the links' names)
# rather than restating them: -Isrc, "core/fencing.hpp", and CAUSALCTL_CORE.
build/causal-wan: $(WAN_SRCS) $(wildcard src/wan/*.hpp)
	@mkdir -p build
	$(CXX) $(TOOL_CXXFLAGS) -o $@ $(WAN_SRCS) -lboost_program_options
build/causalctl: $(CAUSALCTL_SRCS) $(wildcard src/causalctl/*.hpp) $(CAUSALCTL_CORE) $(wildcard src/core/*.hpp) Makefile
	@mkdir -p build
	$(CXX) $(TOOL_CXXFLAGS) -DCAUSAL_VERSION='"$(EXTVERSION)"' -Isrc -I$(shell $(PG_CONFIG) --includedir 2>/dev/null) \
		-o $@ $(CAUSALCTL_SRCS) $(CAUSALCTL_CORE) \
		-L$(shell $(PG_CONFIG) --libdir 2>/dev/null) -lpq -lboost_program_options
build/causal-probe: src/probe/main.cpp src/probe/open_loop.hpp
	@mkdir -p build
	$(CXX) $(TOOL_CXXFLAGS) -I$(shell $(PG_CONFIG) --includedir 2>/dev/null) -o $@ $< \
		-L$(shell $(PG_CONFIG) --libdir 2>/dev/null) -lpq -lboost_program_options
tools: build/causal-wan build/causalctl build/causal-probe
all: tools
TOOL_BINDIR ?= /usr/local/bin
install: install-tools
install-tools: build/causalctl build/causal-wan
	$(MKDIR_P) '$(DESTDIR)$(TOOL_BINDIR)'
	$(INSTALL_PROGRAM) build/causalctl '$(DESTDIR)$(TOOL_BINDIR)/causalctl'
	$(INSTALL_PROGRAM) build/causal-wan '$(DESTDIR)$(TOOL_BINDIR)/causal-wan'

deps:
	tools/install-deps

# GoogleTest on the PostgreSQL-free core.
UNIT_BIN = regress/unit/core_tests
UNIT_SRCS = $(wildcard regress/unit/*.cpp)
$(UNIT_BIN): $(UNIT_SRCS) $(CORE_SRCS) $(wildcard src/core/*.hpp) src/probe/open_loop.hpp
	$(CXX) -std=c++17 -O2 -g -Wall -Wextra -pthread -Isrc/core -o $@ $(UNIT_SRCS) $(CORE_SRCS) -lgtest -lgtest_main

unit: $(UNIT_BIN)
	$(UNIT_BIN)

# libFuzzer (clang) on the hlc's text and binary input and the merge state:
# FUZZ_SECONDS per target, from the corpora in regress/fuzz/corpus.
FUZZ_SECONDS ?= 60
fuzz:
	regress/fuzz/run $(FUZZ_SECONDS)

# Everything: unit tests, then pg_regress and pgTAP against servers the
# harness starts (as a non-root user) and stops again.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

test: deps
	$(MAKE) all
	$(SUDO) $(MAKE) install
	regress/run-tests

demo: deps
	$(MAKE) all
	$(SUDO) $(MAKE) install
	tools/demo

bench: deps
	$(MAKE) all
	$(SUDO) $(MAKE) install
	regress/perf/run-bench
	regress/perf/run-messages-bench
	regress/perf/run-apply-bench
	regress/perf/run-catchup-bench
	regress/perf/run-rejoin-bench
	regress/perf/run-merge-bench
	regress/perf/run-latency-bench
	regress/perf/run-failover-bench
	regress/perf/run-recovery-bench
	regress/perf/run-reseed-bench

# The Debian package postgresql-15-pg-causal: the extension, causalctl and
# causal-wan on PATH. `tools/deb-smoke build/*.deb` installs it (as root)
# and tries it.
deb: deps
	$(MAKE) all
	tools/build-deb

clean-test:
	rm -rf regress/results $(UNIT_BIN)

EXTRA_CLEAN = regress/results $(UNIT_BIN) build $(OBJS:.o=.d)
