#!/usr/bin/env bash
# Source format: the tree must be as `swift format` (configured by .swift-format, 120 columns) leaves it.
# Fix with: swift format format -i -r Sources Tests Package.swift
set -euo pipefail
cd "$(dirname "$0")/.."
swift format lint --strict -r Sources Tests Package.swift
