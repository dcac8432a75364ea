"""resfpn's benchmark (``python -m bench.bench``) and the helpers it shares with the load test."""
