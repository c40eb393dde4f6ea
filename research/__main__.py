"""``python -m research compare [flags]``: see :mod:`research.cli`."""

import sys

from research import devices
from research.cli import main

devices.use_compilation_cache()  # the command line only: library calls leave JAX's config alone
sys.exit(main())
