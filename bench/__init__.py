"""Benchmarks: `make bench` / `python -m bench`. Each compares against a
baseline measured in the same run, because these machines are shared."""
