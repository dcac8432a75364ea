"""``python -m resfpn``: the command line (trace, compare, weights)."""
