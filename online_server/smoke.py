"""A model must answer before it serves: the check a download passes before the pointer moves."""

from __future__ import annotations

from pathlib import Path

from online_server.models import ModelLoadError, Predictor
from online_server.wire import BadBodyError, encode_answer, parse_json

SMOKE_INPUT = "smoke_input.json"


def smoke_test(predictor: Predictor, model_dir: Path | None) -> None:
    """Predict the zip's ``smoke_input.json``, else an input of the model's width; the answer must be JSON.

    ``ModelLoadError`` when it cannot: a pickle of something that is not a model, a model
    of another width than its smoke input, an answer a client could not read.
    """
    path = model_dir / SMOKE_INPUT if model_dir is not None else None
    if path is not None and path.is_file():
        try:
            sample = parse_json(path.read_bytes())
        except BadBodyError as exc:
            raise ModelLoadError(f"{SMOKE_INPUT} is not a usable input: {exc}") from None
    else:
        sample_input = getattr(predictor, "sample_input", None)  # a model type may not know its input
        sample = sample_input() if sample_input is not None else None
        if sample is None:
            return
    try:
        encode_answer(predictor.predict(sample))
    except Exception as exc:  # noqa: BLE001 - whatever the model raises, it did not pass
        raise ModelLoadError(f"the smoke test failed: {type(exc).__name__}: {exc}") from None
