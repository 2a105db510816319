#!/bin/sh
# Regenerates the Go Thrift bindings in ../tcli from TCLIService.thrift.
# Needs thrift-compiler 0.17 or later (Debian: apt-get install thrift-compiler).
# The generated code is committed, so building never needs the compiler.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
thrift --gen go:package=tcli,skip_remote -out "$out" "$here/TCLIService.thrift"
dest="$here/../tcli"
find "$dest" -name '*.go' ! -name 'gen.go' -delete
cp "$out"/tcli/*.go "$dest"/
gofmt -w "$dest"
