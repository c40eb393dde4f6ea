"""``python -m research compare [flags]``: see :mod:`research.cli`."""

import sys

from research import command, devices
from research.cli import main

# The command line only (library calls leave signals and JAX's config alone):
# Ctrl-C ends the process within a second, in one line, with status 130.
command.exit_at_once_on_interrupt()
devices.use_compilation_cache()
try:
  status = main()
except KeyboardInterrupt:  # outside a command's work: while parsing the flags, say
  status = command.interrupted()
sys.exit(status)
