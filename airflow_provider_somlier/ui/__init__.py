"""The Predictions pages inside the Airflow UI: what the offline DAGs wrote, day by day.

An Airflow 3 plugin (``plugin.py``) mounts a small FastAPI app (``app.py``) under the API
server at ``/somlier`` and adds a "SoMLier" entry to the navigation and a "Predictions"
view to every task instance. The app reads only the ``<destination>__profile`` tables
(``reader.py``), finds which destinations exist and who may see them in Airflow's own
metadata (``catalog.py``, ``auth.py``), and renders HTML with server-side SVG charts
(``views.py``, ``svg.py``, ``templates/``) or the same data as JSON.

Nothing here is imported when a DAG file is parsed; ``plugin.py`` imports only Airflow's
plugin base class, and the app is built on its first request.
"""
