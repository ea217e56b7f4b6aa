"""`python -m fbloop_assets.cli`, the same as `fbloop`."""

import sys

from fbloop_assets.cli import main

sys.exit(main())
