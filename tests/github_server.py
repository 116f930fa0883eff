"""A local HTTP server answering the GitHub REST shapes PyGithub uses to open a pull request.

GitHub's API is the one edge no local server stands in for, so tests point PyGithub's
``base_url`` here (as for GitHub Enterprise). State is kept in memory: branches,
files per branch, pull requests. ``fail`` injects an HTTP status for a method and a
path suffix, to test 401/403/404/422/rate limits. ``extra_tokens`` lets several clients
in; ``before_request(method, path, token)``, called in the request's thread before it is
handled, lets a test hold one client's request while another's go through (forced
interleavings of concurrent runs).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class FakeGitHub:
    def __init__(self, owner: str = "mlops", repo: str = "dags", token: str = "ghp_secret_token_123"):
        self.owner, self.repo, self.token = owner, repo, token
        self.branches: dict[str, str] = {"main": "c0"}
        self.files: dict[str, dict[str, str]] = {"main": {"README.md": "dags\n"}}
        self.pulls: list[dict] = []
        self.fail: dict[tuple[str, str], int] = {}
        self.requests: list[tuple[str, str, str]] = []  # (method, path, raw body)
        self.extra_tokens: set[str] = set()
        self.before_request: Callable[[str, str, str], None] | None = None
        self._lock = threading.Lock()  # one request changes the state at a time, as on GitHub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base_url = f"http://127.0.0.1:{self._server.server_port}/api/v3"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- shapes -----------------------------------------------------------------------------
    @property
    def repo_url(self) -> str:
        return f"{self.base_url}/repos/{self.owner}/{self.repo}"

    def _ref(self, branch: str) -> dict:
        return {
            "ref": f"refs/heads/{branch}",
            "url": f"{self.repo_url}/git/refs/heads/{branch}",
            "object": {"sha": self.branches[branch], "type": "commit", "url": f"{self.repo_url}/git/commits/x"},
        }

    def _pull(self, pull: dict) -> dict:
        return {
            "number": pull["number"],
            "state": pull["state"],
            "title": pull["title"],
            "body": pull["body"],
            "url": f"{self.repo_url}/pulls/{pull['number']}",
            "html_url": f"https://github.example/{self.owner}/{self.repo}/pull/{pull['number']}",
            "head": {"ref": pull["head"], "label": f"{self.owner}:{pull['head']}", "sha": self.branches.get(pull["head"], "")},
            "base": {"ref": pull["base"], "label": f"{self.owner}:{pull['base']}"},
        }

    def _content(self, path: str, text: str) -> dict:
        return {
            "type": "file",
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": hashlib.sha1(text.encode()).hexdigest(),
            "encoding": "base64",
            "content": base64.b64encode(text.encode()).decode(),
            "url": f"{self.repo_url}/contents/{path}",
        }

    # -- routing ----------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict, body: dict, auth: str) -> tuple[int, object]:
        scheme, _, given = auth.partition(" ")
        if scheme not in ("token", "Bearer") or given not in {self.token, *self.extra_tokens}:
            return 401, {"message": "Bad credentials"}
        for (fail_method, suffix), status in self.fail.items():
            if fail_method == method and path.endswith(suffix):
                if status == 429:
                    return 403, {"message": "API rate limit exceeded for user"}
                return status, {"message": f"injected {status}"}
        prefix = f"/api/v3/repos/{self.owner}/{self.repo}"
        if not path.startswith(prefix):
            return 404, {"message": "Not Found"}
        rest = path[len(prefix):]
        if rest == "" and method == "GET":
            return 200, {
                "id": 1, "name": self.repo, "full_name": f"{self.owner}/{self.repo}", "url": self.repo_url,
                "owner": {"login": self.owner}, "default_branch": "main",
            }
        if match := re.fullmatch(r"/branches/(.+)", rest):
            branch = match[1]
            if branch not in self.branches:
                return 404, {"message": "Branch not found"}
            return 200, {"name": branch, "commit": {"sha": self.branches[branch], "url": f"{self.repo_url}/commits/x"}}
        if match := re.fullmatch(r"/git/ref/heads/(.+)", rest):
            return (200, self._ref(match[1])) if match[1] in self.branches else (404, {"message": "Not Found"})
        if rest == "/git/refs" and method == "POST":
            branch = body["ref"].removeprefix("refs/heads/")
            if branch in self.branches:
                return 422, {"message": "Reference already exists"}
            self.branches[branch] = body["sha"]
            self.files[branch] = dict(self.files[self._base_of(body["sha"])])
            return 201, self._ref(branch)
        if (match := re.fullmatch(r"/git/refs/heads/(.+)", rest)) and method == "DELETE":
            self.branches.pop(match[1], None)
            self.files.pop(match[1], None)
            return 204, None
        if match := re.fullmatch(r"/contents/(.+)", rest):
            file_path = match[1]
            if method == "GET":
                branch = query.get("ref", ["main"])[0]
                text = self.files.get(branch, {}).get(file_path)
                return (404, {"message": "Not Found"}) if text is None else (200, self._content(file_path, text))
            if method == "PUT":
                branch = body["branch"]
                existing = self.files[branch].get(file_path)
                if existing is not None and body.get("sha") != self._content(file_path, existing)["sha"]:
                    return 409, {"message": "sha mismatch"}
                if existing is None and body.get("sha"):
                    return 422, {"message": "sha given for a new file"}
                self.files[branch][file_path] = base64.b64decode(body["content"]).decode()
                self.branches[branch] = hashlib.sha1(f"{branch}{len(self.requests)}".encode()).hexdigest()
                return (200 if existing else 201), {
                    "content": self._content(file_path, self.files[branch][file_path]),
                    "commit": {"sha": self.branches[branch], "message": body["message"]},
                }
        if rest == "/pulls" and method == "GET":
            found = [p for p in self.pulls if p["state"] == query.get("state", ["open"])[0]]
            if "base" in query:
                found = [p for p in found if p["base"] == query["base"][0]]
            if "head" in query:
                found = [p for p in found if f"{self.owner}:{p['head']}" == query["head"][0]]
            return 200, [self._pull(p) for p in found]
        if rest == "/pulls" and method == "POST":
            if any(p["head"] == body["head"] and p["state"] == "open" for p in self.pulls):
                return 422, {"message": "A pull request already exists"}
            pull = {"number": len(self.pulls) + 1, "state": "open", "title": body["title"], "body": body["body"],
                    "head": body["head"], "base": body["base"]}
            self.pulls.append(pull)
            return 201, self._pull(pull)
        if match := re.fullmatch(r"/pulls/(\d+)", rest):
            pull = self.pulls[int(match[1]) - 1]
            if method == "PATCH":
                pull.update({k: v for k, v in body.items() if k in ("title", "body", "state")})
            return 200, self._pull(pull)
        if match := re.fullmatch(r"/pulls/(\d+)/files", rest):
            pull = self.pulls[int(match[1]) - 1]
            base, head = self.files.get(pull["base"], {}), self.files.get(pull["head"], {})
            return 200, [{"filename": f, "status": "added"} for f in sorted(head) if head[f] != base.get(f)]
        return 404, {"message": f"no route for {method} {rest}"}

    def _base_of(self, sha: str) -> str:
        return next((b for b, s in self.branches.items() if s == sha), "main")

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                auth = self.headers.get("Authorization", "")
                if fake.before_request is not None:
                    fake.before_request(method, url.path, auth.split(" ", 1)[-1])
                with fake._lock:
                    fake.requests.append((method, url.path, raw))
                    status, payload = fake.handle(
                        method, url.path, parse_qs(url.query), json.loads(raw) if raw else {}, auth
                    )
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 403 and "rate limit" in json.dumps(payload):
                    self.send_header("X-RateLimit-Remaining", "0")
                    self.send_header("X-RateLimit-Reset", "9999999999")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                self._serve("GET")

            def do_POST(self):  # noqa: N802
                self._serve("POST")

            def do_PUT(self):  # noqa: N802
                self._serve("PUT")

            def do_PATCH(self):  # noqa: N802
                self._serve("PATCH")

            def do_DELETE(self):  # noqa: N802
                self._serve("DELETE")

            def log_message(self, *args):
                pass

        return Handler
