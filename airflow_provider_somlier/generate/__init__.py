"""DAG generators: validate inputs, render a template, lint with Airflow, publish."""
