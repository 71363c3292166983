# crmblob build.
#   make            build ./build/crmblob
#   make run        install dependencies, build, start the server (SQLite, first admin user)
#   make test       install dependencies, build, run every test (plain and ASan+UBSan builds)
#   make unit       C unit tests only;  make http: black-box tests only (in parallel, see below)
#   make http-pg    the black-box tests with every server on PostgreSQL (a throwaway cluster)
#   make fuzz       run each libFuzzer target FUZZ_SECONDS;  make fuzz-smoke: replay their corpora
#   make install    PREFIX=/usr/local DESTDIR=: the programs, the systemd unit, the man page
# What a target needs from Debian is installed by scripts/deps.sh first, and
# only that: `make run` the build's packages, `make test` the tests' too,
# `make fuzz` clang, `make bench` the benchmark's tools (bench-deps.sh).

CC       ?= cc
BUILD    ?= build
# The server links no image decoder: libvips is linked only into the image
# worker crmblob-img (and the unit tests of the pipeline). Nor libpq: the
# PostgreSQL backend is the module crmblob-pg.so (PG_SRC below).
SRV_PKGS := libmicrohttpd gnutls jansson sqlite3 libsodium expat libcrypto libzstd
PKGS     := $(SRV_PKGS) libpq vips libjpeg
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Isrc -Wall -Wextra -Werror -Wmissing-prototypes \
               -Wstrict-prototypes -Wshadow -Wformat=2 -Wvla -fno-common
OPT      ?= -O2 -g
SAN      ?=
CFLAGS   += $(CFLAGS_BASE) $(OPT) $(SAN) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(SRV_PKGS) 2>/dev/null) -lpthread -lm
JPEG_LIBS := $(shell pkg-config --libs libjpeg 2>/dev/null)
VIPS_LIBS := $(shell pkg-config --libs vips 2>/dev/null) $(JPEG_LIBS)
PG_LIBS  := $(shell pkg-config --libs libpq 2>/dev/null)
LDFLAGS  += $(SAN)

VIPS_SRC := src/img/img_vips.c src/img/img_serve.c src/img/jpegscan.c
# The PostgreSQL backend, libpq's only users (src/store/store_pgmod.h): the
# server loads it as crmblob-pg.so, built from position-independent objects
# (PG_PIC), only for a PostgreSQL --db, so a server on SQLite maps neither
# libpq nor what it pulls in (libssl, Kerberos, LDAP, SASL: 1.3 MiB of RSS).
# The unit tests link its objects (PG_OBJ) and load nothing.
PG_SRC   := src/store/store_pg.c src/store/pg_conn.c src/store/pg_schema.c src/store/store_pgmod.c
PG_OBJ   := $(PG_SRC:%.c=$(BUILD)/%.o)
PG_PIC   := $(PG_SRC:%.c=$(BUILD)/pic/%.o)
LIB_SRC  := $(filter-out $(VIPS_SRC) $(PG_SRC),$(sort $(wildcard src/core/*.c src/store/*.c src/img/*.c src/bulk/*.c \
              src/jobs/*.c src/auth/*.c src/api/*.c src/http/*.c)))
VIPS_OBJ := $(VIPS_SRC:%.c=$(BUILD)/%.o)
MSG_SRC  := $(sort $(wildcard src/api/messages/*.msg))
MSG_GEN  := $(BUILD)/gen/msg_catalog.c
# The version (scripts/version.sh: git describe, else the VERSION file,
# else this default), stamped into one generated file: it is written again
# only when the text changes, so a new commit recompiles that file alone.
VERSION_DEFAULT := 0.0.0
VERSION_GEN := $(BUILD)/gen/version.c
# The OpenAPI document (src/api/openapi.c), compiled in as text.
OPENAPI_GEN := $(BUILD)/gen/openapi_doc.c
# The page's static files, compiled in (src/api/asset.c): each mount
# PREFIX=DIR serves the files under DIR at PREFIX + their path (web/app.js
# at /app.js). Another directory to serve is one more word here, e.g.
# ASSET_MOUNTS += /api/docs/=web-vendor/swagger-ui. Their Content-Type
# comes from the extension (scripts/embed_assets.c: an unknown one stops
# the build), their ETag from a hash of their bytes.
ASSET_MOUNTS := /=web
# Swagger UI at /api/docs: its files are committed in web-vendor/swagger-ui
# (scripts/swagger-ui-deps.sh copies them from npm's swagger-ui-dist at the
# version web-vendor/package-lock.json pins, and checks them in make test).
ASSET_MOUNTS += /api/docs/=web-vendor/swagger-ui
ASSET_DIRS   := $(foreach m,$(ASSET_MOUNTS),$(word 2,$(subst =, ,$(m))))
ASSET_FILES  := $(shell find $(ASSET_DIRS) -name '.*' -prune -o -print 2>/dev/null)
ASSET_GEN    := $(BUILD)/gen/assets.c
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(MSG_GEN:.c=.o) $(VERSION_GEN:.c=.o) $(ASSET_GEN:.c=.o) \
            $(OPENAPI_GEN:.c=.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
PYTEST   ?= /usr/bin/python3 -m pytest
DB       ?= ./data/crmblob.db
LISTEN   ?= 127.0.0.1:8080

.PHONY: browser page-deps FORCE install uninstall web-deps web-deps-check unit-pg http-pg all deps test-deps fuzz-deps client-deps bench-deps run test unit pg-start pg-stop http http-durable test-asan test-asan-pg clean format bench fuzz fuzz-smoke fuzz-build fuzz-bins
all: $(BUILD)/crmblob $(BUILD)/crmblob-img $(BUILD)/crmblob-pg.so

deps:
	@bash scripts/deps.sh build

test-deps:
	@bash scripts/deps.sh build test fuzz

fuzz-deps:
	@bash scripts/deps.sh build fuzz

# Node.js and the official @superoffice/webapi client, for test_agent_client.py.
client-deps:
	@bash scripts/client-deps.sh

# chromium and playwright-core, for the page's browser tests.
page-deps:
	@bash scripts/page-deps.sh

# Swagger UI's files (web-vendor/swagger-ui, committed and compiled in, so
# building needs no npm): `make web-deps` copies them anew from npm's
# swagger-ui-dist at the pinned version; `make test` checks they match it.
web-deps:
	@bash scripts/swagger-ui-deps.sh

web-deps-check:
	@bash scripts/swagger-ui-deps.sh --check

# nginx, wrk, gnuplot and json-server, for the benchmark and its smoke run.
bench-deps:
	@bash scripts/bench-deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# The message catalogues are compiled in (the server is one file): a .msg
# edited or added regenerates the C source that holds them.
$(MSG_GEN): $(MSG_SRC) scripts/embed_messages.sh
	@mkdir -p $(dir $@)
	sh scripts/embed_messages.sh $@ $(MSG_SRC)

$(OPENAPI_GEN): src/api/openapi.json scripts/embed_text.sh
	@mkdir -p $(dir $@)
	sh scripts/embed_text.sh $@ openapi_doc src/api/openapi.json

$(OPENAPI_GEN:.c=.o): $(OPENAPI_GEN)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# The generator is a build tool (host compiler, no sanitizer); the files
# and their directories are prerequisites, so an edited, added or removed
# file regenerates the C source.
$(BUILD)/tools/embed_assets: scripts/embed_assets.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -O2 -o $@ $< $(shell pkg-config --cflags --libs libsodium 2>/dev/null)

$(ASSET_GEN): $(BUILD)/tools/embed_assets $(ASSET_FILES)
	@mkdir -p $(dir $@)
	$(BUILD)/tools/embed_assets $@ $(ASSET_MOUNTS)

$(ASSET_GEN:.c=.o): $(ASSET_GEN)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -MMD -MP -c $< -o $@

$(MSG_GEN:.c=.o): $(MSG_GEN)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(VERSION_GEN): FORCE
	@mkdir -p $(dir $@)
	@v=$$(sh scripts/version.sh $(VERSION_DEFAULT)); \
	    printf '/* generated by the Makefile (scripts/version.sh) */\n#include "core/version.h"\n%s\n' \
	    "const char *version_string(void) { return \"$$v\"; }" >$@.tmp; \
	    if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; echo "version $$v"; fi

$(VERSION_GEN:.c=.o): $(VERSION_GEN)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libcrmblob.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

BIN_OBJ  := $(patsubst %.c,$(BUILD)/%.o,src/main.c $(wildcard src/cli/*.c))

# The PostgreSQL module exports store_pgmod_v1 alone (store_pgmod.map) and
# takes the rest it calls (arena, log, model, ...) from the program. Which
# symbols those are is read off its objects: the server exports exactly
# them (--dynamic-list) and links them in even if nothing else needs them
# (-u), both from the linker options file crmblob-pg.ldopts.
$(BUILD)/crmblob-pg.so: $(PG_PIC) src/store/store_pgmod.map
	$(CC) -shared $(LDFLAGS) -Wl,--version-script=src/store/store_pgmod.map -o $@ $(PG_PIC) \
	    $(PG_LIBS)

$(BUILD)/crmblob-pg.ldopts: $(PG_PIC) $(BUILD)/libcrmblob.a
	@nm -g --defined-only $(BUILD)/libcrmblob.a | awk 'NF == 3 {print $$3}' | sort -u >$@.lib
	@nm -u $(PG_PIC) | awk 'NF == 2 {print $$2}' | sort -u | comm -12 - $@.lib >$@.syms
	@{ echo '{'; sed 's/$$/;/' $@.syms; echo '};'; } >$(BUILD)/crmblob-pg.dynlist
	@{ echo '-Wl,--dynamic-list=$(BUILD)/crmblob-pg.dynlist'; sed 's/^/-Wl,-u,/' $@.syms; } >$@
	@rm -f $@.lib $@.syms

# the server starts crmblob-img and loads crmblob-pg.so from its own
# directory: build them together
$(BUILD)/crmblob: $(BIN_OBJ) $(BUILD)/libcrmblob.a $(BUILD)/crmblob-pg.ldopts \
                  | $(BUILD)/crmblob-img $(BUILD)/crmblob-pg.so
	$(CC) $(LDFLAGS) @$(BUILD)/crmblob-pg.ldopts -o $@ $(BIN_OBJ) $(BUILD)/libcrmblob.a $(LDLIBS)

# The image worker: the libvips pipeline behind src/img/imgw.h.
$(BUILD)/crmblob-img: $(BUILD)/src/imgworker.o $(VIPS_OBJ) $(BUILD)/libcrmblob.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(VIPS_LIBS)

# Unit tests get the libvips pipeline itself (its objects come before the
# library, so img_remote.o is not pulled in). They are built again when a
# shared test header (tmpdb.h, pgtmp.h) changes.
$(BUILD)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(VIPS_OBJ) $(PG_OBJ) $(BUILD)/libcrmblob.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(VIPS_OBJ) $(PG_OBJ) $(BUILD)/libcrmblob.a $(LDFLAGS) $(TEST_LDFLAGS) \
	    $(LDLIBS) $(PG_LIBS) $(VIPS_LIBS) -lcmocka

# The durable-mode test counts, slows and fails the store's flushes.
$(BUILD)/tests/test_store_durable: TEST_LDFLAGS := -Wl,--wrap=fdatasync

run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p $(dir $(DB))
	./$(BUILD)/crmblob serve --listen $(LISTEN) --db $(DB)

# Installation. The server starts crmblob-img and loads crmblob-pg.so from
# the directory of its own executable (/proc/self/exe, symbolic links
# resolved), so the three live together in LIBDIR/crmblob and BINDIR holds
# a relative symbolic link to the server: PATH finds it, it finds them,
# and the tree can be staged under DESTDIR and moved with its PREFIX.
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
LIBDIR   ?= $(PREFIX)/lib
MANDIR   ?= $(PREFIX)/share/man
UNITDIR  ?= $(PREFIX)/lib/systemd/system
PKGDIR   := $(LIBDIR)/crmblob

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(PKGDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BUILD)/crmblob $(BUILD)/crmblob-img $(DESTDIR)$(PKGDIR)/
	install -m 0644 $(BUILD)/crmblob-pg.so $(DESTDIR)$(PKGDIR)/
	ln -sfn $$(realpath -m --relative-to=$(BINDIR) $(PKGDIR)/crmblob) $(DESTDIR)$(BINDIR)/crmblob
	install -m 0644 doc/crmblob.1 $(DESTDIR)$(MANDIR)/man1/crmblob.1
	sed 's|@BINDIR@|$(BINDIR)|g' dist/systemd/crmblob.service >$(DESTDIR)$(UNITDIR)/crmblob.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/crmblob.service

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/crmblob $(DESTDIR)$(MANDIR)/man1/crmblob.1 \
	    $(DESTDIR)$(UNITDIR)/crmblob.service \
	    $(addprefix $(DESTDIR)$(PKGDIR)/,crmblob crmblob-img crmblob-pg.so)
	-rmdir $(DESTDIR)$(PKGDIR)

# PostgreSQL's server programs (Debian: postgresql, outside PATH). Without
# them the tests that need a real server (test_pg_conn, test_store_pg) are left out of
# `unit`, said so, and nothing else changes.
PG_BINDIR    := $(lastword $(sort $(wildcard /usr/lib/postgresql/*/bin)))
PG_AVAILABLE := $(if $(wildcard $(PG_BINDIR)/initdb),pg)
PG_UNIT      := $(BUILD)/tests/test_pg_conn $(BUILD)/tests/test_store_pg
# A throwaway cluster for the tests (scripts/pg-cluster.sh; fsync off, see
# there): `eval "$$(make -s pg-start)"` puts its PG* variables in a shell.
PG_DIR       ?= $(abspath $(BUILD))/pg
export CRMBLOB_PG_CLUSTER := $(abspath scripts/pg-cluster.sh)

# The store's tests written for both backends (tests/unit/tmpdb.h): `unit`
# runs them a second time against PostgreSQL (CRMBLOB_TEST_DB=pg) on a
# throwaway cluster of their own, where the server programs are. Cases
# only SQLite can run skip themselves there, saying why.
PG_TWICE := $(addprefix $(BUILD)/tests/,test_store test_store_blob test_store_entity \
              test_store_account test_store_variant test_store_cred test_store_race test_auth test_jobs \
              test_task_edit test_store_task test_store_task_file)

unit: $(UNIT_BIN)
	@set -e; for t in $(if $(PG_AVAILABLE),$(UNIT_BIN),$(filter-out $(PG_UNIT),$(UNIT_BIN))); do \
	    echo "== $$t"; ./$$t; done
	@$(if $(PG_AVAILABLE),$(MAKE) --no-print-directory unit-pg,echo "== $(PG_UNIT) left out: no PostgreSQL server programs (make test-deps)")

unit-pg: $(PG_TWICE)
	@set -e; d=$$(mktemp -d /tmp/crmblob-unitpg-XXXXXX); rmdir $$d; \
	eval "$$(bash scripts/pg-cluster.sh start --fast $$d)"; \
	trap 'bash scripts/pg-cluster.sh stop '"$$d"' >/dev/null' EXIT; \
	for t in $(PG_TWICE); do echo "== $$t (PostgreSQL)"; CRMBLOB_TEST_DB=pg ./$$t; done

pg-start:
	@bash scripts/pg-cluster.sh start --fast $(PG_DIR)

pg-stop:
	@bash scripts/pg-cluster.sh stop $(PG_DIR)

# The black-box suites run in parallel (pytest-xdist: Debian
# python3-pytest-xdist): PYTEST_JOBS workers (default 2; 0 = one process,
# which needs no pytest-xdist), each taking whole modules (--dist
# loadfile), so that a module's server is made once. Tests marked `serial`
# time the server under load (a Bystander's latency, the benchmark's smoke
# run, races between connections measured in milliseconds): they run
# afterwards, alone, so that the parallel run does not decide their timings. Each server picks a
# free port and takes another if a parallel test got it first; every
# module's files live in its own temporary directory (conftest.py).
PYTEST_JOBS ?= 2
XDIST     = $(if $(filter 0,$(PYTEST_JOBS)),,-n $(PYTEST_JOBS) --dist loadfile)
HTTP_ENV  = CRMBLOB_BIN=$(abspath $(BUILD)/crmblob) CRMBLOB_FAILSYNC=$(abspath $(BUILD)/tests/failsync.so)
# $(call run_http,MODULES,EXTRA ENV[,SERIAL MODULES]): the parallel part,
# then the serial one (of SERIAL MODULES when given, else of MODULES);
# pytest's 5 (no test selected) is no failure.
define run_http
	@set -e; ok() { rc=0; "$$@" || rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]; }; \
	    echo "== tests not marked serial (PYTEST_JOBS=$(PYTEST_JOBS))"; \
	    ok env $(HTTP_ENV) $(2) $(PYTEST) -q $(XDIST) -m 'not serial' $(1); \
	    echo "== serial"; ok env $(HTTP_ENV) $(2) $(PYTEST) -q -m serial $(or $(3),$(1))
endef

http: $(BUILD)/crmblob $(BUILD)/crmblob-img $(BUILD)/tests/failsync.so
	$(call run_http,tests/http)

# The modules whose subject is writes and their answers, again with every
# server in durable mode, where a write is answered after its flush (held
# answers, group commit, a failed flush, SIGTERM while answers wait, the
# read cache after group commits; a task output streamed after its
# request's scope ended, stored in many writes). Durable mode changes how writes are
# answered, not how requests are parsed, authorized, refused or pictures
# decoded: the other modules would run the same code a second time.
DURABLE_TESTS := $(addprefix tests/http/test_,$(addsuffix .py,durability concurrency entities \
                   image imageinfo pipeline_storage agent sessions lifecycle read_cache \
                   patch_race batch_output))
http-durable: $(BUILD)/crmblob $(BUILD)/crmblob-img $(BUILD)/tests/failsync.so
	$(call run_http,$(DURABLE_TESTS),CRMBLOB_SERVE_ARGS=--durable)

# The whole black-box suite again with every server on PostgreSQL
# (CRMBLOB_TEST_DB=pg: each Server a fresh schema), in a throwaway cluster
# (--fast: no fsync) that pg-cluster.sh `with` starts under /tmp (reachable
# by the user postgres when run as root, wherever the clone lives) and
# removes however the run ends; inside a running one (PG_CLUSTER_DIR
# set), that one. Tests whose subject is SQLite itself skip themselves
# there, saying why, and so do the modules that choose their databases
# themselves (conftest.py: sqlite_only, OWN_BACKENDS).
#
# Of the modules run alone (serial: a bystander's latency under an attack),
# only those whose subject is the store run again on PostgreSQL: the others
# (hostile framing, slow clients, throttled sign-ins, image budgets, proxies,
# log floods) test the HTTP layer and the image worker, whatever the store
# (their SQLite run proves them; they took 1.5 of this run's 3.9 minutes).
PG_SERIAL_TESTS := $(addprefix tests/http/test_,$(addsuffix .py,concurrency store_hostile))
http-pg: $(BUILD)/crmblob $(BUILD)/crmblob-img $(BUILD)/tests/failsync.so
ifeq ($(PG_CLUSTER_DIR),)
	@d=$$(mktemp -d /tmp/crmblob-httppg-XXXXXX) && rmdir $$d && \
	    bash scripts/pg-cluster.sh with --fast $$d $(MAKE) --no-print-directory http-pg
else
	$(call run_http,tests/http,CRMBLOB_TEST_DB=pg,$(PG_SERIAL_TESTS))
endif

# A disk that refuses flushes on demand (LD_PRELOAD), for test_durability.
# Never sanitized: it is loaded before the sanitizer's runtime.
$(BUILD)/tests/failsync.so: tests/http/failsync.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -O2 -shared -fPIC -o $@ $< -ldl

# The page in a real browser (tests/http/test_page_browser.py: headless
# chromium driven by playwright-core), once: not in every build mode of
# the black-box suites, which skip it. It times the list view, so it runs
# alone. CRMBLOB_PAGE_OUT=DIR keeps its screenshots and figures there.
browser: $(BUILD)/crmblob $(BUILD)/crmblob-img
	@env $(HTTP_ENV) CRMBLOB_BROWSER=1 $(PYTEST) -q -s tests/http/test_page_browser.py

# The unit tests and every black-box module again under AddressSanitizer +
# UndefinedBehaviorSanitizer (in parallel as above), on SQLite and on
# PostgreSQL: the plain runs already prove the behaviour, these that no
# path of it touches memory it must not, so no module is left out. (The
# PostgreSQL run took 3m20s under ASan, 3m37s plain: its time is mostly
# waiting, see the README's Tests.)
# Under the sanitizers: the unit tests (the store's on both backends) and
# the black-box suite on SQLite. The black-box suite on PostgreSQL runs in
# the plain build only (make test): under ASan it repeated 3.5 minutes of
# paths that the store's unit tests on PostgreSQL cover (make test-asan-pg
# runs it).
test-asan:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" unit http

test-asan-pg:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" http-pg

# The client test and the benchmark's smoke run must run here: a missing
# Node.js, client, nginx or wrk fails them instead of skipping.
test: test-deps client-deps bench-deps page-deps web-deps-check
	@$(MAKE) --no-print-directory CRMBLOB_REQUIRE_CLIENT=1 CRMBLOB_REQUIRE_BENCH=1 unit http
	@$(MAKE) --no-print-directory CRMBLOB_REQUIRE_BROWSER=1 browser
	@$(MAKE) --no-print-directory CRMBLOB_REQUIRE_CLIENT=1 CRMBLOB_REQUIRE_BENCH=1 http-durable
	@$(MAKE) --no-print-directory CRMBLOB_REQUIRE_CLIENT=1 http-pg
	@$(MAKE) --no-print-directory CRMBLOB_REQUIRE_CLIENT=1 CRMBLOB_REQUIRE_BENCH=1 test-asan
	@$(MAKE) --no-print-directory fuzz-smoke

# Fuzzing (tests/fuzz/fuzz_<name>.c, libFuzzer): the library is rebuilt with
# clang into build-fuzz/ with the sanitizers (no main in it), each target is
# linked with -fsanitize=fuzzer. `fuzz` runs every target FUZZ_SECONDS on its
# committed corpus tests/fuzz/corpus/<name>/, writing new inputs only to
# build-fuzz/corpus/<name>/; `fuzz-smoke` replays the committed corpora once.
FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 2
FUZZ_SAN     := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
FUZZ_BIN      = $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(BUILD)/libcrmblob.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -MMD -MP -o $@ $< $(FUZZ_LINK) $(BUILD)/libcrmblob.a \
	    $(LDFLAGS) $(LDLIBS)

# The JPEG data check lives in the image worker: its target gets it and libjpeg.
$(BUILD)/fuzz/fuzz_jpegscan: $(BUILD)/src/img/jpegscan.o
$(BUILD)/fuzz/fuzz_jpegscan: FUZZ_LINK = $(BUILD)/src/img/jpegscan.o $(JPEG_LIBS)
# The conninfo parser is in the PostgreSQL backend: its target links it and libpq.
$(BUILD)/fuzz/fuzz_pg_conninfo: $(PG_OBJ)
$(BUILD)/fuzz/fuzz_pg_conninfo: FUZZ_LINK = $(PG_OBJ) $(PG_LIBS)

# The config file parser lives in src/cli, beside the program's main.
$(BUILD)/fuzz/fuzz_conf: $(filter-out $(BUILD)/src/main.o,$(BIN_OBJ))
$(BUILD)/fuzz/fuzz_conf: FUZZ_LINK = $(filter-out $(BUILD)/src/main.o,$(BIN_OBJ))

fuzz-bins: $(FUZZ_BIN)

fuzz-build: fuzz-deps
	@$(MAKE) --no-print-directory CC=$(FUZZ_CC) BUILD=$(FUZZ_BUILD) \
	    OPT="-O1 -g -fno-omit-frame-pointer" SAN="$(FUZZ_SAN)" fuzz-bins

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) bash scripts/fuzz.sh run $(FUZZ_BUILD)

fuzz-smoke: fuzz-build
	@bash scripts/fuzz.sh smoke $(FUZZ_BUILD)

# The benchmark of issue 7 (not part of `make test`; its smoke run is):
# writes BENCHMARKS.md and bench/chart.png.
bench: deps bench-deps
	@$(MAKE) --no-print-directory all
	@bash bench/run.sh

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/unit/*.c' 'tests/fuzz/*.c')

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJ:.o=.d) $(PG_OBJ:.o=.d) $(PG_PIC:.o=.d) $(BIN_OBJ:.o=.d) $(VIPS_OBJ:.o=.d) $(BUILD)/src/imgworker.d $(FUZZ_BIN:=.d)
