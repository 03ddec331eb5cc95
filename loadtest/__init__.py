"""Bot players over the real path (lobby HTTP, then the node), and load reports.

`python -m loadtest --help` for the tool, `python -m loadtest.scenarios --help` for the
documented scenarios; docs/performance.md for the figures.
"""
