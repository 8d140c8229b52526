"""Looking at networks and runs: plots (and, later, summary, bench, report)."""
