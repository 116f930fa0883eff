"""A worker's follower thread loads a switched model without a request, and keeps going past a failed load."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from online_server.follow import follow_pointer
from online_server.models import ModelLoadError


class FakeState:
    """The parts of ServingState the follower uses: a pointer that moves, loads that may fail."""

    def __init__(self, failures: int = 0) -> None:
        self.pointer = SimpleNamespace(identity=lambda: self.moved_to)
        self.moved_to = self.loaded_identity = (1, 1)
        self.failures = failures
        self.loaded = threading.Event()
        self.wake = threading.Event()
        self.followed = False

    def ensure_loaded(self) -> None:
        if self.failures:
            self.failures -= 1
            raise ModelLoadError("the registry is down")
        self.loaded_identity = self.moved_to
        self.loaded.set()


def test_a_moved_pointer_is_loaded_without_a_request():
    state = FakeState()
    assert follow_pointer(state, 0.05).daemon
    time.sleep(0.2)
    assert not state.loaded.is_set()  # nothing moved: nothing loaded
    state.moved_to = (2, 2)
    assert state.loaded.wait(5) and state.loaded_identity == (2, 2)


def test_a_failed_load_is_tried_again_and_does_not_stop_the_follower():
    state = FakeState(failures=2)
    follow_pointer(state, 0.05)
    state.moved_to = (3, 3)
    assert state.loaded.wait(5) and state.failures == 0


def test_zero_seconds_turns_following_off():
    assert follow_pointer(FakeState(), 0) is None


def test_a_wake_makes_the_follower_load_at_once():
    state = FakeState()
    follow_pointer(state, 3600)
    assert state.followed
    state.moved_to = (4, 4)
    state.wake.set()  # as the front does when it sees the pointer move
    assert state.loaded.wait(5) and state.loaded_identity == (4, 4)
