# The commands of the README: `make demo`, `make fleet-demo` and `make test`. Each installs what it needs.
SHELL := /bin/bash
DOTNET ?= dotnet
CONFIG ?= Release
LIVEGRAFT := artifacts/livegraft/livegraft

.PHONY: deps demo fleet-demo test publish bench clean

deps:
	@./scripts/install-deps

publish: deps
	@$(DOTNET) publish src/Livegraft.Cli -c $(CONFIG) -o artifacts/livegraft --nologo -v quiet >&2

demo: publish
	@./scripts/demo

fleet-demo: publish
	@./scripts/fleet-demo

test: publish
	@./scripts/test

clean:
	rm -rf artifacts
