"""caldaemon's benchmarks: ``python -m benchmarks`` prints a table and writes RESULTS.md."""
