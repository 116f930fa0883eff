"""The Predictions app: HTML pages and the same data as JSON, behind Airflow's authentication.

``create_app`` is a factory (no module-level app, no global state): the plugin builds one
on the API server's first request to ``/somlier``, tests build their own. Handlers are
plain functions, which FastAPI runs in its thread pool, since every one of them waits on
BigQuery or Airflow's database.

Routes, relative to where the app is mounted (``/somlier``):

* ``/`` and ``/api/destinations`` — every destination the user may see, its latest day;
* ``/destinations/{project.dataset.table}`` and ``/api/destinations/…`` — its days
  (``?days=30|90|365``, at most 366, or ``?start=…&end=…``);
* ``/destinations/{…}/days/{YYYY-MM-DD}`` and ``/api/…`` — one day, column by column;
* ``/task/{dag_id}/{run_id}/{task_id}`` and ``/api/task/…`` — the day a task instance wrote
  (the Predictions view of a task instance opens this).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

# Imported by the API server only, on the first request to the pages (see plugin.LazyApp):
# FastAPI resolves the handlers' annotations in this module's namespace.
from fastapi import FastAPI, Request

from airflow_provider_somlier.ui.errors import DayNotFoundError, PagesError, UnknownDestinationError

if TYPE_CHECKING:
    from airflow_provider_somlier.ui.catalog import Catalog, Destination
    from airflow_provider_somlier.ui.reader import ProfileReader
    from airflow_provider_somlier.ui.settings import UISettings

MOUNT = "/somlier"
DEFAULT_BASELINE_DAYS = 7
CHART_COLUMNS = 1  # the first prediction column is charted; JSON carries all of them


class Pages:
    """What the routes share: settings, the catalog of destinations, the profile reader."""

    def __init__(self, settings: UISettings, catalog: Catalog, reader: ProfileReader) -> None:
        self.settings = settings
        self.catalog = catalog
        self.reader = reader
        self._mlflow_url: str | None = None

    def links(self, request: Request):
        from airflow_provider_somlier.ui.views import Links

        return Links(app_root=request.scope.get("root_path", "").rstrip("/"), mlflow_tracking_url=self.mlflow_url())

    def mlflow_url(self) -> str:
        """An http(s) registry to link model versions to: the MLflow connection's, else ``mlflow_ui_url``."""
        if self._mlflow_url is None:
            url = ""
            try:
                from airflow_provider_somlier.hooks.mlflow import MLflowHook

                url = MLflowHook(mlflow_conn_id=self.settings.mlflow_conn_id).tracking_uri
            except Exception:  # noqa: BLE001 - no connection, no links; the pages still work
                url = ""
            if not url.startswith(("http://", "https://")):
                url = self.settings.mlflow_ui_url
            self._mlflow_url = url
        return self._mlflow_url

    # -- what a user may see -------------------------------------------------------------------
    def visible(self, user: Any) -> dict[str, Destination]:
        from airflow_provider_somlier.ui.auth import readable_dag_ids, visible

        return visible(self.catalog.destinations(), readable_dag_ids(user))

    def destination(self, user: Any, text: str) -> Destination:
        from airflow_provider_somlier.ui import params

        table = params.destination_id(text)
        found = self.visible(user).get(table.table_id)
        if found is None:
            raise UnknownDestinationError(
                f"{table.table_id} is not a SoMLier destination you may see: no SoMLier task of a DAG you may read "
                "has written it"
            )
        return found

    # -- the pages' data -----------------------------------------------------------------------
    def overview(self, request: Request, user: Any) -> list[dict[str, Any]]:
        import concurrent.futures

        from airflow_provider_somlier.ui.views import destination_summary

        destinations = sorted(self.visible(user).values(), key=lambda d: d.table_id)

        def latest(destination: Destination) -> list[dict[str, Any]] | PagesError:
            try:
                return self.reader.latest_day(destination.table)
            except PagesError as exc:
                return exc

        with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, max(len(destinations), 1))) as pool:
            results = list(pool.map(latest, destinations))
        run_ids = [rows[0]["airflow_run_id"] for rows in results if isinstance(rows, list) and rows]
        dag_ids = {dag for d in destinations for dag in d.dag_ids}
        run_dags = self.catalog.run_dags(run_ids, dag_ids)
        links = self.links(request)
        summaries = []
        for destination, rows in zip(destinations, results):
            if isinstance(rows, PagesError):
                summary = destination_summary(destination, [], run_dags, links)
                summary["error"] = rows.message
            else:
                summary = destination_summary(destination, rows, run_dags, links)
            summaries.append(summary)
        return summaries

    def timeline(self, request: Request, user: Any, text: str, days: str | None, start: str | None,
                 end: str | None) -> dict[str, Any]:
        from airflow_provider_somlier.ui import params
        from airflow_provider_somlier.ui.views import timeline

        destination = self.destination(user, text)
        wanted = params.day_range(days, start, end)
        if wanted.start is None:
            latest = self.reader.latest_date(destination.table) or dt.datetime.now(dt.timezone.utc).date()
        else:
            latest = wanted.end
        first, last = wanted.bounds(latest)
        rows = self.reader.days_between(destination.table, first, last)
        run_dags = self.catalog.run_dags({r["airflow_run_id"] for r in rows if r.get("airflow_run_id")},
                                         destination.dag_ids)
        data = timeline(destination, rows, first, last, run_dags, self.links(request))
        data["range"] = wanted.to_dict()
        return data

    def day(self, request: Request, user: Any, text: str, day_text: str) -> dict[str, Any]:
        from airflow_provider_somlier.ui import params
        from airflow_provider_somlier.ui.views import day_detail

        destination = self.destination(user, text)
        day = params.day(day_text)
        writer = sorted(destination.writers, key=lambda w: (w.dag_id, w.task_id))[0]
        settings, source = self.catalog.quality_settings(writer.dag_id, writer.task_id)
        rows = self.reader.day_with_baseline(destination.table, day, settings.baseline_days or DEFAULT_BASELINE_DAYS)
        run_ids = {r["airflow_run_id"] for r in rows if r.get("airflow_run_id")}
        run_dags = self.catalog.run_dags(run_ids, destination.dag_ids)
        day_run = next((r.get("airflow_run_id") for r in rows if r["target_date"] == day), None)
        day_dag = run_dags.get(day_run) if day_run else None
        if day_dag is not None and day_dag != writer.dag_id:
            settings, source = self.catalog.quality_settings(day_dag, destination.task_of(day_dag))
        if settings.baseline == "training":
            source += "; drift shown against the previous days (the training profile is not read here)"
        data = day_detail(destination, day, rows, settings, source, run_dags, self.links(request))
        if data is None:
            raise DayNotFoundError(f"{destination.table_id} holds no profile of {day}: the day was not written "
                                   "(or the gate refused it and kept the day as it was)")
        return data

    def task(self, request: Request, user: Any, dag_id: str, run_id: str, task_id: str,
             map_index: str | None) -> dict[str, Any]:
        from airflow_provider_somlier.ui import params
        from airflow_provider_somlier.ui.auth import readable_dag_ids

        if dag_id not in readable_dag_ids(user):
            raise UnknownDestinationError(f"no DAG {dag_id!r} that you may read")
        written = self.catalog.written_by(dag_id, run_id, task_id, params.map_index(map_index))
        if written is None:
            return {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "destination": None, "target_date": None,
                    "url": None}
        return {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "destination": written.table.table_id,
                "target_date": written.target_date.isoformat(),
                "url": self.links(request).day(written.table.table_id, written.target_date)}


def _is_api(request: Request) -> bool:
    path, root = request.scope.get("path", ""), request.scope.get("root_path", "")
    relative = path[len(root):] if root and path.startswith(root) else path
    return relative.startswith("/api/") or relative == "/api"


def create_app(settings: UISettings | None = None, *, catalog: Catalog | None = None,
               reader: ProfileReader | None = None) -> FastAPI:
    """A Predictions app; ``settings`` default to Airflow's ``[somlier]`` configuration."""
    from fastapi import Depends, Query
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from airflow_provider_somlier.ui import render, svg
    from airflow_provider_somlier.ui.auth import airflow_user_dependency
    from airflow_provider_somlier.ui.catalog import Catalog
    from airflow_provider_somlier.ui.reader import ProfileReader
    from airflow_provider_somlier.ui.settings import UISettings

    settings = settings or UISettings.from_airflow()
    pages = Pages(settings, catalog or Catalog(settings), reader or ProfileReader(settings))
    app = FastAPI(title="SoMLier predictions", version="1", docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json")
    app.state.pages = pages
    User = Depends(airflow_user_dependency())  # noqa: N806 - a dependency marker, used like a type

    def home(request: Request) -> str:
        return f"{request.scope.get('root_path', '').rstrip('/')}/"

    def error_response(request: Request, status: int, code: str, message: str) -> Any:
        if _is_api(request):
            return JSONResponse({"error_code": code, "message": message}, status_code=status)
        link, link_text = None, ""
        if status == 401:
            root = request.scope.get("root_path", "").rstrip("/")
            link, link_text = f"{root.rsplit('/', 1)[0] if '/' in root else ''}/", "Sign in to Airflow"
        titles = {401: "Sign in first", 403: "Not allowed", 404: "Not found"}
        body = render.page("message.html", title=titles.get(status, "Bad request" if status < 500 else "Unavailable"),
                           message=message, status=status, error_code=code, link=link, link_text=link_text,
                           home_url=home(request))
        return HTMLResponse(body, status_code=status)

    @app.exception_handler(PagesError)
    def pages_error(request: Request, exc: PagesError) -> Any:
        return error_response(request, exc.status, exc.error_code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> Any:
        codes = {401: "NOT_AUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
        response = error_response(request, exc.status_code, codes.get(exc.status_code, "HTTP_ERROR"), str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(RequestValidationError)
    def validation_error(request: Request, exc: RequestValidationError) -> Any:
        where = "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors()[:5])
        return error_response(request, 400, "BAD_PARAMETER", f"malformed request: {where}")

    @app.exception_handler(Exception)
    def unexpected(request: Request, exc: Exception) -> Any:
        import logging

        logging.getLogger(__name__).exception("SoMLier predictions page failed")
        return error_response(request, 500, "INTERNAL_ERROR",
                              f"the page could not be built ({type(exc).__name__}); the API server's log has the details")

    # -- JSON ----------------------------------------------------------------------------------
    @app.get("/api/destinations")
    def api_destinations(request: Request, user: Any = User) -> dict[str, Any]:
        return {"destinations": pages.overview(request, user)}

    @app.get("/api/destinations/{destination}")
    def api_destination(request: Request, destination: str, user: Any = User, days: str | None = Query(None),
                        start: str | None = Query(None), end: str | None = Query(None)) -> dict[str, Any]:
        return pages.timeline(request, user, destination, days, start, end)

    @app.get("/api/destinations/{destination}/days/{day}")
    def api_day(request: Request, destination: str, day: str, user: Any = User) -> dict[str, Any]:
        return pages.day(request, user, destination, day)

    @app.get("/api/task/{dag_id}/{run_id}/{task_id}")
    def api_task(request: Request, dag_id: str, run_id: str, task_id: str, user: Any = User,
                 map_index: str | None = Query(None)) -> dict[str, Any]:
        return pages.task(request, user, dag_id, run_id, task_id, map_index)

    # -- pages ---------------------------------------------------------------------------------
    def api_url(request: Request) -> str:
        root = request.scope.get("root_path", "").rstrip("/")
        path = request.scope.get("path", "")
        relative = path[len(root):] if path.startswith(root) else path
        query = f"?{request.url.query}" if request.url.query else ""
        return f"{root}/api{relative if relative != '/' else '/destinations'}{query}"

    @app.get("/", response_class=HTMLResponse)
    def overview_page(request: Request, user: Any = User) -> Any:
        return render.page("overview.html", destinations=pages.overview(request, user),
                           api_url=f"{home(request)}api/destinations")

    @app.get("/destinations/{destination}", response_class=HTMLResponse)
    def destination_page(request: Request, destination: str, user: Any = User, days: str | None = Query(None),
                         start: str | None = Query(None), end: str | None = Query(None)) -> Any:
        data = pages.timeline(request, user, destination, days, start, end)
        chronological = data["days"][::-1]
        column = next((name for d in chronological for name in d["predictions"]), None)
        rows_chart = svg.bar_chart("rows per day", [(d["target_date"][5:], d["rows"] or 0, bool(d["failures"]))
                                                    for d in chronological])
        band = (svg.band_chart(f"{column} per day", [(d["target_date"][5:], d["predictions"].get(column, {}))
                                                     for d in chronological]) if column else None)
        links = pages.links(request)
        return render.page("destination.html", t=data, rows_chart=rows_chart, prediction_chart=band,
                           prediction_column=column, api_url=api_url(request), home_url=home(request),
                           range_url=lambda n: links.destination(data["destination"], days=n))

    @app.get("/destinations/{destination}/days/{day}", response_class=HTMLResponse)
    def day_page(request: Request, destination: str, day: str, user: Any = User) -> Any:
        data = pages.day(request, user, destination, day)

        def histogram(column: dict[str, Any]) -> str:
            return svg.histogram_chart(f"{column['column']}: this day against the baseline",
                                       [(b["bucket"], b["day"], b["baseline"]) for b in column["histogram"]])

        return render.page("day.html", d=data, histogram=histogram, api_url=api_url(request), home_url=home(request))

    @app.get("/task/{dag_id}/{run_id}/{task_id}", response_class=HTMLResponse)
    def task_page(request: Request, dag_id: str, run_id: str, task_id: str, user: Any = User,
                  map_index: str | None = Query(None)) -> Any:
        found = pages.task(request, user, dag_id, run_id, task_id, map_index)
        if found["url"]:
            return RedirectResponse(found["url"], status_code=303)
        return render.page(
            "message.html", title="No predictions from this task instance", status=200, error_code="",
            message=(f"{task_id} of {run_id} wrote no day through SoMLier: it is not a SoMLier task that writes a "
                     "day (the single task, or a sharded group's commit), it has not succeeded yet, or its gate "
                     "refused the day (the task's log names the failed checks)."),
            link=None, link_text="", home_url=home(request),
        )

    return app
