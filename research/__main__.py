"""``python -m research compare [flags]``: see :mod:`research.cli`."""

import sys

from research.cli import main

sys.exit(main())
