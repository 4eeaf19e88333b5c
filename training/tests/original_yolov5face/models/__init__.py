# Test-only: the original design's `models` package path (see ../README.md).
