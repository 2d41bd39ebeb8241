"""Python imports this at start-up in every process of the test run (it is on PYTHONPATH): guard the network, and
skip the garbage collection of the whole heap at exit.

The second is for speed only: the test run starts dozens of Python processes, many of which load torch, and there
that last collection costs about 0.5 s of CPU (registered first, `gc.freeze` runs after every other exit handler).
"""

import atexit
import gc

import netguard  # noqa: F401

atexit.register(gc.freeze)
