import os
import sys

from .cli.main import main

try:
    status = main()
    sys.stdout.flush()
except BrokenPipeError:  # e.g. `python -m resfpn | head`: the reader left; that is not an error
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    status = 0
sys.exit(status)
