"""``python -m stl.cli`` = the ``stl`` command."""
import sys

from . import main

sys.exit(main())
