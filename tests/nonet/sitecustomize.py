"""Python imports this at start-up in every process of the test run (it is on PYTHONPATH): guard the network, and
skip the garbage collection of the whole heap at exit.

The second is for speed only: the test run starts some 40 Python processes that load torch, and that last collection
costs each about 0.5 s of CPU (registered first, `gc.freeze` runs after every other exit handler).
"""

import atexit
import gc

import netguard  # noqa: F401

atexit.register(gc.freeze)
