# The two commands of the README: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
DOTNET ?= dotnet
CONFIG ?= Release
LIVEGRAFT := artifacts/livegraft/livegraft

.PHONY: deps demo test publish bench clean

deps:
	@./scripts/install-deps

publish: deps
	@$(DOTNET) publish src/Livegraft.Cli -c $(CONFIG) -o artifacts/livegraft --nologo -v quiet >&2

demo: publish
	@./scripts/demo

test: publish
	@./scripts/test

clean:
	rm -rf artifacts
