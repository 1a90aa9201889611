"""The controller process seen from the testbed: starting, watching and stopping the os-ken
controller (:mod:`.process`), and the feed messages built from a network plan
(:mod:`.messages`). The controller itself is the top-level :mod:`controllers` package.
"""
