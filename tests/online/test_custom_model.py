"""A custom source zip: loaded in isolation, so a switch replaces all of its code; its failures are answers."""

from __future__ import annotations

import io
import sys
import zipfile

from online_server.app import create_app
from online_server.settings import Settings

NAME = "shop_model"

MAIN = '''
import helper

class shop_model:
    def load(self, model_path):
        pass

    def predict(self, data):
        return helper.answer(data)
'''


def src_zip(helper: str, main: str = MAIN) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr(f"{NAME}.py", main)
        zipped.writestr("helper.py", helper)
    return buffer.getvalue()


def make_client(tmp_path, helper: str, main: str = MAIN):
    root = tmp_path / "storage" / NAME
    (root / "src").mkdir(parents=True)
    (root / "model").mkdir()
    (root / "src" / f"{NAME}.zip").write_bytes(src_zip(helper, main))
    (root / "model" / "20261120.zip").write_bytes(src_zip("", ""))  # any zip: the class loads nothing
    settings = Settings(model_name=NAME, model_type="custom", storage_root=str(tmp_path / "storage"),
                        work_dir=str(tmp_path / "work"))
    client = create_app(settings).test_client()
    return client, root


def test_a_new_source_zip_replaces_its_helper_modules_too(tmp_path):
    client, root = make_client(tmp_path, "def answer(data):\n    return ['old helper']\n")
    assert client.post("/src_download").status_code == 200
    assert client.post("/model_download").status_code == 200
    assert client.post("/result", json={"test": 1}).get_json()["result"] == ["old helper"]
    (root / "src" / f"{NAME}.zip").write_bytes(src_zip("def answer(data):\n    return ['new helper']\n"))
    assert client.post("/src_download").status_code == 200
    assert client.post("/result", json={"test": 1}).get_json()["result"] == ["new helper"]
    assert "helper" not in sys.modules  # nothing of the zip is left for another zip to pick up


def test_numpy_scalars_in_the_answer_are_written_as_numbers(tmp_path):
    client, _ = make_client(tmp_path, "import numpy as np\ndef answer(data):\n    return [np.float32(0.5), np.int64(3)]\n")
    client.post("/src_download")
    client.post("/model_download")
    answer = client.post("/result", json={"test": 1})
    assert answer.status_code == 200 and answer.get_json()["result"] == [0.5, 3]


def test_sys_exit_while_predicting_is_a_json_500_and_the_server_keeps_serving(tmp_path):
    client, _ = make_client(tmp_path, "import sys\ndef answer(data):\n    if data == 'stop':\n        sys.exit(3)\n    return [1]\n")
    client.post("/src_download")
    client.post("/model_download")
    answer = client.post("/result", json={"test": "stop"})
    assert answer.status_code == 500 and answer.get_json()["error_code"] == "MODEL_FAILED"
    assert "SystemExit" in answer.get_json()["message"]
    assert client.post("/result", json={"test": 1}).get_json()["result"] == [1]


def test_sys_exit_while_loading_is_a_rejected_switch(tmp_path):
    client, _ = make_client(tmp_path, "import sys\nsys.exit(0)\n")
    client.post("/src_download")
    answer = client.post("/model_download")
    assert answer.status_code == 422 and "SystemExit" in answer.get_json()["message"]


def test_an_answer_that_is_not_json_is_a_named_500(tmp_path):
    client, _ = make_client(tmp_path, "def answer(data):\n    return [float('nan')]\n")
    client.post("/src_download")
    client.post("/model_download")
    answer = client.post("/result", json={"test": 1})
    assert answer.status_code == 500 and "not JSON" in answer.get_json()["message"]


def test_keyboard_interrupt_while_predicting_is_a_json_500_and_the_server_keeps_serving(tmp_path):
    client, _ = make_client(tmp_path, "def answer(data):\n    if data == 'stop':\n        raise KeyboardInterrupt\n    return [1]\n")
    client.post("/src_download")
    client.post("/model_download")
    answer = client.post("/result", json={"test": "stop"})
    assert answer.status_code == 500 and answer.get_json()["error_code"] == "MODEL_FAILED"
    assert "KeyboardInterrupt" in answer.get_json()["message"]
    assert client.post("/result", json={"test": 1}).get_json()["result"] == [1]


def test_a_model_message_reaches_the_client_as_one_bounded_line_without_paths(tmp_path, caplog):
    helper = (
        "import traceback\n"
        "def answer(data):\n"
        "    try:\n"
        "        open('/srv/secret/models/weights.bin')\n"
        "    except OSError:\n"
        "        raise RuntimeError(traceback.format_exc() + 'x' * 5000)\n"
    )
    client, _ = make_client(tmp_path, helper)
    client.post("/src_download")
    client.post("/model_download")
    answer = client.post("/result", json={"test": 1})
    message = answer.get_json()["message"]
    assert answer.status_code == 500 and answer.get_json()["error_code"] == "MODEL_FAILED"
    assert len(message) <= 300 and "\n" not in message
    assert "/srv/secret" not in message and str(tmp_path) not in message and "Traceback" not in message
    assert "/srv/secret/models/weights.bin" in caplog.text  # the log keeps it whole


def test_a_failing_predict_runs_once_per_request(tmp_path):
    """The fast path's failure is answered by the Flask route without predicting again."""
    calls = tmp_path / "calls.txt"
    client, _ = make_client(tmp_path, f'''
def answer(data):
    with open({str(calls)!r}, "a") as out:
        out.write("x")
    if data == "bad":
        raise ValueError("not a row this model takes")
    raise RuntimeError("the model broke")
''')
    assert client.post("/src_download").status_code == 200 and client.post("/model_download").status_code == 200
    refused = client.post("/result", json={"test": "bad"})
    assert refused.status_code == 400 and refused.get_json()["error_code"] == "BAD_INPUT"
    assert calls.read_text() == "x"
    broken = client.post("/result", json={"test": "other"})
    assert broken.status_code == 500 and broken.get_json()["error_code"] == "MODEL_FAILED"
    assert calls.read_text() == "xx"
