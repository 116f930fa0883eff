"""Import ``skops.io`` (MLflow 3's default scikit-learn format) in seconds less inside a worker.

Why: importing ``skops.io`` computes the names of every ufunc it trusts. For each ufunc
without a ``__module__`` (scipy's, a few hundred) skops asks every loaded module, one by
one in import order, whether it holds that object (``skops.io._utils.whichmodule``).
That is ufuncs × modules ``getattr`` calls: cheap in a bare interpreter, but an Airflow
task process has ~3,500 modules loaded, several with a module ``__getattr__`` (Airflow's
deprecation shims) that does real work for every miss. Measured in a task process it was
most of the time a model took to load.

One of those shims, ``airflow.serialization.serde``, redirects every name to a module
that does not exist, so each miss there is a failed import: ~10 ms, paid once per ufunc.

What: while ``skops.io`` is being imported (and only then), its ``whichmodule`` looks the
object up in the namespaces of the plain loaded modules, in import order, as the original
does, and skips modules that compute attributes on demand (a module ``__getattr__``):
those are lazy re-exports and deprecation shims, which hold no ufunc of their own and are
absent from the process that saved the model anyway (a training script does not import
Airflow). Once the import is done the original function is put back, so skops behaves as
published from then on. A test compares every trusted-type list both ways in a process
with Airflow loaded.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

_UTILS = "skops.io._utils"


def import_skops_io() -> None:
    """Import ``skops.io`` if it is installed and not yet imported, with the indexed lookup."""
    if "skops.io" in sys.modules or importlib.util.find_spec("skops") is None:
        return
    finder = _PatchWhichmodule()
    sys.meta_path.insert(0, finder)
    try:
        with warnings.catch_warnings():
            # the original import emits a warning per deprecated Airflow name it touches
            warnings.simplefilter("ignore")
            import skops.io  # noqa: F401
    finally:
        sys.meta_path.remove(finder)
        finder.restore()


class _PlainModules:
    """First plain module (in ``sys.modules`` order) whose namespace holds ``obj`` under ``name``."""

    def __init__(self) -> None:
        self._size = -1
        self._namespaces: list[tuple[str, dict[str, Any]]] = []

    def _snapshot(self) -> None:
        self._namespaces = []
        for module_name, module in sys.modules.copy().items():
            if module is None or module_name in ("__main__", "__mp_main__") or type(module) is not ModuleType:
                continue
            namespace = module.__dict__
            if "__getattr__" not in namespace:  # a lazy or deprecation-shim module: not asked
                self._namespaces.append((module_name, namespace))
        self._size = len(sys.modules)

    def find(self, obj: Any, name: str) -> str:
        if len(sys.modules) != self._size:  # modules imported since: look again
            self._snapshot()
        for module_name, namespace in self._namespaces:
            if namespace.get(name) is obj:
                return module_name
        return "__main__"


class _PatchWhichmodule(importlib.abc.MetaPathFinder):
    """Finds ``skops.io._utils`` as usual and, once it has run, swaps in the indexed lookup."""

    def __init__(self) -> None:
        self._module: ModuleType | None = None
        self._original: Callable[[Any, str], str] | None = None

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None):
        if fullname != _UTILS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        loader, patch = spec.loader, self._patch

        class Loader(importlib.abc.Loader):
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module: ModuleType) -> None:
                loader.exec_module(module)
                patch(module)

        spec.loader = Loader()
        return spec

    def _patch(self, module: ModuleType) -> None:
        original = getattr(module, "whichmodule", None)
        if original is None:  # another skops: leave it as it is
            return
        index = _PlainModules()

        def whichmodule(obj: Any, name: str) -> str:
            if getattr(obj, "__module__", None) is not None or "." in name:
                return original(obj, name)
            return index.find(obj, name)

        self._module, self._original = module, original
        module.whichmodule = whichmodule

    def restore(self) -> None:
        if self._module is not None and self._original is not None:
            self._module.whichmodule = self._original
