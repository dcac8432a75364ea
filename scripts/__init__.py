"""Scripts that start and drive the app: ``python -m scripts.serve``, ``python -m scripts.load_test``."""
