# syncamp: build and install the collector and the analyzer, with man pages and shell completions.
#
#   make                        release build
#   sudo make install           into /usr/local (PREFIX=/usr, DESTDIR=/stage for packages)
#   make uninstall
#
# The binaries live in $(PREFIX)/lib/syncamp with the collector's resource bundle (the BPF
# object, which SwiftPM looks up beside the real executable); $(PREFIX)/bin has symlinks.

PREFIX  ?= /usr/local
DESTDIR ?=
CONFIG  ?= release

root    := $(DESTDIR)$(PREFIX)
libdir  := $(root)/lib/syncamp
mandir  := $(root)/share/man/man1
bashdir := $(root)/share/bash-completion/completions
zshdir  := $(root)/share/zsh/site-functions
fishdir := $(root)/share/fish/vendor_completions.d
tools   := collector analyzer
plugins := .build/plugins/GenerateManual/outputs

.PHONY: all build man install uninstall

all: build

# Release builds link Swift's runtime in: the binaries then need only glibc and the C
# libraries they use (libbpf, libelf, libz, libdw, libcapstone). Debug builds (the tests')
# cannot link Foundation statically, so they keep the shared runtime. The analyzer's static link
# needs libcurl's development files (FlyingFox, its HTTP server, imports FoundationNetworking).
STATIC := $(if $(filter release,$(CONFIG)),--static-swift-stdlib,)

build:
	swift build -c $(CONFIG) $(STATIC) --product collector
	swift build -c $(CONFIG) $(STATIC) --product analyzer

# Man pages from the argument parsers' help (swift-argument-parser's GenerateManual plugin).
# A blank line in a help text becomes an empty mdoc line, which groff warns about: make it .Pp.
man: build
	swift package --allow-writing-to-package-directory generate-manual --configuration $(CONFIG) --date $$(date -u -d @$${SOURCE_DATE_EPOCH:-$$(date +%s)} +%F) \
	    --authors "syncamp developers"
	sed -i 's/^$$/.Pp/' $(plugins)/Collector/collector.1 $(plugins)/Analyzer/analyzer.1

install: build man
	@bin=$$(swift build -c $(CONFIG) --show-bin-path); set -e; \
	install -d "$(libdir)" "$(root)/bin" "$(mandir)" "$(bashdir)" "$(zshdir)" "$(fishdir)"; \
	for t in $(tools); do install -m 755 "$$bin/$$t" "$(libdir)/$$t"; ln -sf "../lib/syncamp/$$t" "$(root)/bin/$$t"; done; \
	rm -rf "$(libdir)/syncamp_Collector.resources"; cp -R "$$bin/syncamp_Collector.resources" "$(libdir)/"; \
	install -m 644 "$(plugins)/Collector/collector.1" "$(plugins)/Analyzer/analyzer.1" "$(mandir)/"; \
	for t in $(tools); do \
	    "$$bin/$$t" --generate-completion-script bash > "$(bashdir)/$$t"; \
	    "$$bin/$$t" --generate-completion-script zsh > "$(zshdir)/_$$t"; \
	    "$$bin/$$t" --generate-completion-script fish > "$(fishdir)/$$t.fish"; \
	done; \
	echo "installed collector and analyzer in $(root)/bin (man pages, bash/zsh/fish completions)"

uninstall:
	rm -rf "$(libdir)"
	for t in $(tools); do rm -f "$(root)/bin/$$t" "$(mandir)/$$t.1" "$(bashdir)/$$t" "$(zshdir)/_$$t" "$(fishdir)/$$t.fish"; done
