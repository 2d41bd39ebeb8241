"""Python imports this at start-up in every process of the test run (it is on PYTHONPATH): guard the network."""

import netguard  # noqa: F401
