"""Tear-down is not cut short by a second Ctrl-C: interrupts are held, then re-raised."""

import os
import signal

import pytest

from testbed.system.tracking import interrupts_held


def test_ctrl_c_during_the_body_is_held_until_the_body_ends():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_held():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("rest of the tear-down ran")
    assert done == ["rest of the tear-down ran"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # handler restored


def test_no_interrupt_no_exception():
    with interrupts_held():
        pass
