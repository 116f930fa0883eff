"""Each worker follows the shared pointer on its own, not only when a request arrives.

A worker that is idle when another worker switches models would otherwise keep the old
model loaded -- and show it as serving in the version gauge -- until its next request,
which then also pays for the load. Following the pointer in the background makes every
worker load the new model within ``FOLLOW_POINTER_SECONDS`` of a switch, requests or not.
"""

from __future__ import annotations

import logging
import threading

from online_server.models import ModelLoadError
from online_server.state import ServingState

log = logging.getLogger(__name__)


def follow_pointer(state: ServingState, every_seconds: float) -> threading.Thread | None:
    """Start a daemon thread that reloads ``state`` when the pointer moves; None when disabled (0)."""
    if every_seconds <= 0:
        return None

    def follow() -> None:
        reported = ""
        while True:
            state.wake.wait(every_seconds)  # or sooner, when the front saw the pointer move
            state.wake.clear()
            if state.pointer.identity() == state.loaded_identity:
                continue
            try:
                state.ensure_loaded()  # under the state's lock: a request meanwhile waits for this load
            except ModelLoadError as exc:  # remembered by the state; requests answer 503 naming it
                if str(exc) != reported:
                    log.warning("the switched-to model did not load: %s", exc)
                reported = str(exc)
            except BaseException:  # noqa: BLE001 - the follower must outlive a model's odd failure (sys.exit too)
                log.exception("following the model pointer failed")

    state.followed = True
    thread = threading.Thread(target=follow, name="somlier-follow-pointer", daemon=True)
    thread.start()
    return thread
