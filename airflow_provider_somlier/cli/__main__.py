"""``python -m airflow_provider_somlier.cli``: the ``somlier`` command without its console script."""

from airflow_provider_somlier.cli import main

main()
