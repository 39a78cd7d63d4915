"""The argparse ``type=`` functions of the options; their home is :mod:`stl.cli.args` (the one
argument module). Re-exported here for the commands that import them from this module."""
from .args import confidence_level, nonnegative_float, nonnegative_int, positive_int, unit_interval  # noqa: F401
