"""Token masking: every GitHub token shape, and the configured token whatever its shape."""

from __future__ import annotations

import pytest

from airflow_provider_somlier.generate.redact import mask_tokens


@pytest.mark.parametrize("token", [
    "ghp_16C7e42F292c6912E7710c838347Ae178B4a", "gho_16C7e42F292c6912E7710c838347Ae178B4a",
    "ghs_16C7e42F292c6912E7710c838347Ae178B4a", "ghu_16C7e42F292c6912E7710c838347Ae178B4a",
    "ghr_1B4a2e77838347a7E420ce178F2E7c6912E169246c34E1ccbF66C46812d16D5B1A9Dc86A1498",
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTU",
    "0123456789abcdef0123456789abcdef01234567",
])
def test_every_github_token_shape_is_masked_wherever_it_sits(token):
    for text in (token, f"Authorization: token {token}", f"'{token}'", f"x={token}.", f"({token})"):
        masked = mask_tokens(text)
        assert token not in masked and "***" in masked


def test_the_configured_token_is_masked_whatever_its_shape():
    assert mask_tokens("got 'plain-secret-42' here", ["plain-secret-42"]) == "got '***' here"


def test_ordinary_text_is_left_alone():
    text = "DAG_ID 'inference_boston' is invalid: run 0123456789abcdef0123456789abcdef (32 hex) ghost_writer"
    assert mask_tokens(text, ["-", "", None]) == text
