"""`python -m loadtest ...`: see loadtest/cli.py for the flags."""

import sys

from loadtest.cli import main

sys.exit(main())
