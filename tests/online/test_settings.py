"""Settings come from the environment, typed."""

from online_server.settings import Settings


def test_batching_and_thread_settings_are_read_typed_from_the_environment():
    settings = Settings.from_env({"MODEL_NAME": "m", "MAX_BATCH": "8", "MAX_BATCH_WAIT_MS": "0.5", "NATIVE_THREADS": "2"})
    assert (settings.max_batch, settings.max_batch_wait_ms, settings.native_threads) == (8, 0.5, 2)
    assert (Settings(model_name="m").max_batch, Settings(model_name="m").native_threads) == (32, 0)
