# halo-milter - top-level build.
#
#   make              build build/halo-milter and build/halo-milterctl
#   make check        every test level: unit, milter protocol, corpus, e2e
#   make demo         the main job (private Postfix + halo-milter + sample mail)
#   make deps         install missing Debian packages (idempotent)
#   make fuzz         run each libFuzzer target for FUZZ_SECONDS (default 60)
#   make bench        benchmarks: a table and bench/results.json (BENCH_RUNS=3,
#                     BENCH_QUICK=1 for a short run); not part of make check
#   make soak         mail through Postfix while faults are injected, then
#                     every message checked (SOAK_SECONDS=600, SOAK_SEED=);
#                     make check runs a 60 s version (check-soak)
#   make soak-pg      the same with two MX nodes sharing a private PostgreSQL
#                     store (SOAK_NODES=2); check-soak runs a 45 s version
#   make SANITIZE=address,undefined check   the suite under ASan/UBSan
#   make install PREFIX=/usr/local DESTDIR=
#   make deb          the Debian package (../halo-milter_*.deb, copied to build/)
#   make check-pkg    build the package, install it in a Debian 12 chroot and
#                     start it against the Halo simulator (slow; not in check)
#   make clean

PREFIX   ?= /usr/local
DESTDIR  ?=
SBINDIR  ?= $(PREFIX)/sbin
MANDIR   ?= $(PREFIX)/share/man
DOCDIR   ?= $(PREFIX)/share/doc/halo-milter
SYSCONFDIR ?= /etc
# systemd's unit directory for this PREFIX: /usr and / use the distribution's
# (/lib/systemd/system on Debian 12), anything else PREFIX/lib/systemd/system,
# which systemd also reads for /usr/local.
ifneq ($(filter /usr /usr/ /,$(PREFIX)),)
UNITDIR  ?= /lib/systemd/system
else
UNITDIR  ?= $(PREFIX)/lib/systemd/system
endif
SANITIZE ?=
FUZZ_SECONDS ?= 60
SOAK_SECONDS ?= 600

ifeq ($(SANITIZE),)
BUILD    ?= build
OPT      ?= -O2
HARDEN   := -D_FORTIFY_SOURCE=2
else
BUILD    ?= build/san
OPT      ?= -O1
HARDEN   :=
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

CC       ?= cc
PKGS     := gmime-3.0 libcjson sqlite3 libpq openssl libcurl gumbo libytnef libmicrohttpd libqrencode \
            libsystemd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN     := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Werror
CFLAGS   ?= $(OPT) -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(HARDEN) -fstack-protector-strong \
            -fPIE -pthread -Icommon -Imilter $(PKG_CFLAGS) $(SANFLAGS) $(CFLAGS) \
            -DHALO_WEB_ROOT='"$(PREFIX)/share/halo-milter/web"'
ALL_LDFLAGS := -pie -Wl,-z,relro,-z,now -pthread $(SANFLAGS) $(LDFLAGS)
LIBS     := $(PKG_LIBS)

COMMON_SRC := $(sort $(wildcard common/*.c))
# milter/ sources that do not use libmilter (shared with tests and fuzzers)
CORE_SRC   := milter/intake.c milter/worker.c milter/worker_call.c \
              milter/worker_sender.c milter/worker_thread.c \
              milter/worker_closed.c milter/worker_post.c \
              milter/worker_retention.c milter/web.c \
              milter/web_admin.c milter/web_admin_ops.c \
              milter/web_pane.c milter/web_agent.c
DAEMON_SRC := milter/halo-milter.c milter/callbacks.c
CTL_SRC    := milter/halo-milterctl.c

LIB_OBJ    := $(COMMON_SRC:%.c=$(BUILD)/obj/%.o) $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
LIBHALO    := $(BUILD)/libhalo.a

UNIT_SRC   := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

FUZZ_SRC   := $(sort $(wildcard tests/fuzz/fuzz_*.c))

.PHONY: all deps check check-all check-unit check-milter check-corpus check-e2e \
        check-browser check-halosim check-soak check-man check-cli check-pkg demo demo-run \
        fuzz bench bench-run soak soak-run soak-pg soak-pg-run install deb deps-pkg clean

all: $(BUILD)/halo-milter $(BUILD)/halo-milterctl $(BUILD)/halo-milter.service

# PREFIX is compiled in (the default web_root) and written into the unit: a
# stamp that changes only when PREFIX does makes both rebuild then.
$(BUILD)/prefix.stamp: FORCE
	@mkdir -p $(BUILD)
	@echo '$(PREFIX) $(SBINDIR)' | cmp -s - $@ || echo '$(PREFIX) $(SBINDIR)' > $@
FORCE:

$(BUILD)/obj/common/conf.o: $(BUILD)/prefix.stamp

$(BUILD)/halo-milter.service: systemd/halo-milter.service.in $(BUILD)/prefix.stamp
	sed 's|@SBINDIR@|$(SBINDIR)|g' systemd/halo-milter.service.in > $@

deps:
	@sh scripts/deps.sh

$(BUILD)/obj/%.o: %.c $(wildcard common/*.h milter/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIBHALO): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/halo-milter: $(DAEMON_SRC:%.c=$(BUILD)/obj/%.o) $(LIBHALO)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ -lmilter $(LIBS)

$(BUILD)/halo-milterctl: $(CTL_SRC:%.c=$(BUILD)/obj/%.o) $(LIBHALO)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(LIBHALO)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes $(ALL_LDFLAGS) -o $@ $< $(LIBHALO) -lcmocka $(LIBS)

$(BUILD)/corpus-intake: tests/corpus/corpus-intake.c $(LIBHALO)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIBHALO) $(LIBS)

$(BUILD)/mime-json: tests/corpus/mime-json.c $(LIBHALO)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIBHALO) $(LIBS)

$(BUILD)/html-golden: tests/corpus/html-golden.c $(LIBHALO)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIBHALO) $(LIBS)

# deps first, then a fresh make: pkg-config flags are read when make starts
check: deps
	@$(MAKE) --no-print-directory check-all

check-all: all $(UNIT_BIN) $(BUILD)/corpus-intake $(BUILD)/mime-json $(BUILD)/html-golden
	@rm -f $(BUILD)/check.log $(BUILD)/.rc-check-*
	@status=0; for t in check-unit check-man check-cli check-milter check-corpus check-e2e check-soak check-browser check-halosim; do \
	  $(MAKE) --no-print-directory $$t 2>&1 | tee -a $(BUILD)/check.log; \
	  tail -1 $(BUILD)/.rc-$$t 2>/dev/null | grep -qx 0 || status=1; \
	done; \
	awk '/^[a-z-]+: [0-9]+ passed, [0-9]+ failed$$/ { p += $$2; f += $$4 } \
	     END { printf "check: %d passed, %d failed\n", p, f }' $(BUILD)/check.log; \
	exit $$status

# the store's tests run on SQLite and on a private PostgreSQL server
# (scripts/pg.sh: initdb in a temporary directory, Unix socket only)
check-unit: $(UNIT_BIN)
	@pgdir=$$(mktemp -d "$${TMPDIR:-/tmp}/halo-pg.XXXXXX"); \
	  if ! pg=$$(sh scripts/pg.sh start "$$pgdir"); then \
	    echo "check-unit: cannot start PostgreSQL (make deps)"; rm -rf "$$pgdir"; \
	    echo 1 > $(BUILD)/.rc-check-unit; exit 1; fi; \
	  HALO_TEST_PG="$$pg" sh tests/run-unit.sh $(UNIT_BIN); rc=$$?; \
	  sh scripts/pg.sh stop "$$pgdir"; echo $$rc > $(BUILD)/.rc-check-unit; exit $$rc

check-milter: all
	@BUILD=$(BUILD) sh tests/milter/run.sh; rc=$$?; echo $$rc > $(BUILD)/.rc-check-milter; exit $$rc

check-corpus: $(BUILD)/corpus-intake $(BUILD)/mime-json $(BUILD)/html-golden
	@BUILD=$(BUILD) sh tests/corpus/run.sh; rc=$$?; echo $$rc > $(BUILD)/.rc-check-corpus; exit $$rc

check-e2e: all
	@rc=0; for t in selftest run halo reload trust enroll webattack sealkey sendmail twonode; do BUILD=$(BUILD) sh tests/e2e/$$t.sh || rc=1; done; \
	  echo $$rc > $(BUILD)/.rc-check-e2e; exit $$rc

# the fault-injection soak, short (tests/soak/run.sh; make soak for the long
# one), then its two-node PostgreSQL variant (make soak-pg), shorter still
check-soak: all
	@BUILD=$(BUILD) SOAK_SECONDS=60 sh tests/soak/run.sh; rc=$$?; \
	  BUILD=$(BUILD) SOAK_NODES=2 SOAK_SECONDS=45 sh tests/soak/run.sh || rc=1; \
	  echo $$rc > $(BUILD)/.rc-check-soak; exit $$rc

# headless Debian chromium via playwright-core (tests/browser/run.sh)
check-browser: all
	@BUILD=$(BUILD) sh tests/browser/run.sh; rc=$$?; echo $$rc > $(BUILD)/.rc-check-browser; exit $$rc

check-halosim:
	@mkdir -p $(BUILD)
	@python3 -m unittest discover -s tests/halosim -p 'test_*.py' > $(BUILD)/halosim-test.log 2>&1; \
	  rc=$$?; echo $$rc > $(BUILD)/.rc-check-halosim; \
	  n=$$(sed -n 's/^Ran \([0-9]*\) test.*/\1/p' $(BUILD)/halosim-test.log); \
	  if [ $$rc -eq 0 ]; then echo "halosim: $${n:-0} passed, 0 failed"; \
	  else tail -30 $(BUILD)/halosim-test.log; echo "halosim: 0 passed, $${n:-1} failed"; fi; \
	  exit $$rc

demo: deps
	@$(MAKE) --no-print-directory demo-run

demo-run: all
	@BUILD=$(BUILD) sh tests/e2e/demo.sh

# Benchmarks: figures, not tests (tests/bench/run.sh, README "Benchmarks").
bench: deps
	@$(MAKE) --no-print-directory bench-run

bench-run: all
	@BUILD=$(BUILD) sh tests/bench/run.sh

# Soak: faults injected while mail flows, then every invariant checked
# (tests/soak/run.sh, README "Soak").  SOAK_SEED replays a run.
soak: deps
	@$(MAKE) --no-print-directory soak-run

soak-run: all
	@BUILD=$(BUILD) SOAK_SECONDS=$(SOAK_SECONDS) sh tests/soak/run.sh

# the same with two MX nodes sharing a private PostgreSQL store (SOAK_NODES=2)
soak-pg: deps
	@$(MAKE) --no-print-directory soak-pg-run

soak-pg-run: all
	@BUILD=$(BUILD) SOAK_NODES=2 SOAK_SECONDS=$(SOAK_SECONDS) sh tests/soak/run.sh

# libFuzzer targets: clang, ASan+UBSan, linked against a separately built core.
FUZZ_BUILD := build/fuzz
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
               -Icommon -Imilter $(PKG_CFLAGS)
fuzz:
	@mkdir -p $(FUZZ_BUILD)
	@for t in $(FUZZ_SRC); do \
	  n=$$(basename $$t .c); \
	  echo "fuzz: building $$n"; \
	  clang $(FUZZ_CFLAGS) -o $(FUZZ_BUILD)/$$n $$t $(COMMON_SRC) $(CORE_SRC) $(PKG_LIBS) || exit 1; \
	done
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_BUILD=$(FUZZ_BUILD) sh tests/fuzz/run.sh

# man pages: every key of common/conf.c documented in halo-milter.conf(5)
check-man:
	@mkdir -p $(BUILD)
	@BUILD=$(BUILD) sh tests/man/run.sh; rc=$$?; echo $$rc > $(BUILD)/.rc-check-man; exit $$rc

# --help, the stricter -t, halo-milterctl's store errors
check-cli: all
	@BUILD=$(BUILD) sh tests/cli/run.sh; rc=$$?; echo $$rc > $(BUILD)/.rc-check-cli; exit $$rc

# the Debian package: build tools only for this target (scripts/deps-pkg.sh)
deps-pkg:
	@sh scripts/deps-pkg.sh

# dpkg-buildpackage writes next to the source tree: build a copy in
# $(BUILD)/deb so the results land in $(BUILD)/deb and the tree stays clean
DEB_SRC := $(BUILD)/deb/halo-milter
deb: deps-pkg
	@rm -rf $(BUILD)/deb && mkdir -p $(DEB_SRC)
	tar --exclude=./build --exclude=./.git --exclude='*/node_modules' -cf - . | \
	    tar -C $(DEB_SRC) -xf -
	cd $(DEB_SRC) && dpkg-buildpackage -us -uc -b
	lintian --fail-on error \
	    $(BUILD)/deb/halo-milter_*.changes
	@ls $(BUILD)/deb/halo-milter_*.deb

check-pkg: deps-pkg
	@BUILD=$(BUILD) sh tests/pkg/run.sh

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(PREFIX)/share/halo-milter/web \
	    $(DESTDIR)$(SYSCONFDIR)/halo-milter $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR)
	install -m 0755 $(BUILD)/halo-milter $(BUILD)/halo-milterctl $(DESTDIR)$(SBINDIR)/
	install -m 0640 conf/halo-milter.conf $(DESTDIR)$(SYSCONFDIR)/halo-milter/halo-milter.conf.example
	install -m 0644 $(BUILD)/halo-milter.service $(DESTDIR)$(UNITDIR)/
	install -m 0644 man/halo-milter.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 man/halo-milter.8 man/halo-milterctl.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/
	if [ -d web ] && [ -n "$$(ls -A web)" ]; then cp -R web/. $(DESTDIR)$(PREFIX)/share/halo-milter/web/; fi

clean:
	rm -rf build
