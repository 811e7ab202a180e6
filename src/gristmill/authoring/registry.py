"""Where pipelines are found: dotted paths (the ``GRISTMILL_PIPELINES`` setting) or files.

A spec is ``package.module`` (every :class:`~gristmill.authoring.pipelines.Pipeline` defined in it),
``package.module:name`` (one object: a pipeline, or a list of them), a path to a ``.py`` file, or
a path to a ``.yaml`` / ``.yml`` file (every pipeline it describes, see
:mod:`gristmill.authoring.yamlimport`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from gristmill.authoring.pipelines import Pipeline
from gristmill.authoring.yamlimport import load_file
from gristmill.errors import ConfigurationError, DefinitionError, NotFoundError


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise ConfigurationError(f"pipeline file {str(path)!r} does not exist")
    resolved = path.resolve()
    # A stable module name per file, so that task identities (and fingerprints) do not change
    # between processes that load the same file.
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:10]
    module_name = f"gristmill_pipelines_{resolved.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"cannot import pipeline file {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    # Like running a script: modules beside the pipeline file can be imported.
    if str(resolved.parent) not in sys.path:
        sys.path.insert(0, str(resolved.parent))
    try:
        spec.loader.exec_module(module)
    except DefinitionError:
        del sys.modules[module_name]
        raise
    except Exception as error:
        del sys.modules[module_name]
        raise ConfigurationError(
            f"cannot load pipeline file {str(path)!r}: {type(error).__name__}: {error}"
        ) from error
    return module


def _pipelines_in(value: Any, origin: str) -> list[Pipeline]:
    if isinstance(value, Pipeline):
        return [value]
    if isinstance(value, ModuleType):
        return [v for v in vars(value).values() if isinstance(v, Pipeline)]
    if isinstance(value, list | tuple) and all(isinstance(v, Pipeline) for v in value):
        return list(value)
    raise ConfigurationError(f"{origin} is not a pipeline, a list of pipelines or a module")


YAML_SUFFIXES = (".yaml", ".yml")
"""The file names read as YAML pipeline files."""


def load_spec(spec: str) -> list[Pipeline]:
    """Import the pipelines named by one spec; :class:`ConfigurationError` if it finds none
    (:class:`~gristmill.errors.PipelineFileError`, one, if a YAML file is wrong)."""
    if spec.lower().endswith(YAML_SUFFIXES):
        found = load_file(Path(spec))
    elif spec.endswith(".py") or "/" in spec or "\\" in spec:
        found = _pipelines_in(_import_file(Path(spec)), spec)
    else:
        module_name, _, attribute = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except DefinitionError:
            raise
        except Exception as error:
            raise ConfigurationError(
                f"cannot import pipelines from {spec!r}: {type(error).__name__}: {error}"
            ) from error
        value: Any = module
        if attribute:
            try:
                value = getattr(module, attribute)
            except AttributeError as error:
                raise ConfigurationError(
                    f"module {module_name!r} has no attribute {attribute!r}"
                ) from error
        found = _pipelines_in(value, spec)
    if not found:
        raise ConfigurationError(f"{spec!r} defines no pipelines")
    return found


class Registry:
    """The pipelines a server (or one ``gristmill run``) offers, by name."""

    def __init__(self, pipelines: Iterable[Pipeline] = (), *, specs: Iterable[str] = ()):
        self.specs = tuple(specs)
        self._pipelines: dict[str, Pipeline] = {}
        for spec in self.specs:
            for pipeline in load_spec(spec):
                self.add(pipeline)
        for pipeline in pipelines:
            self.add(pipeline)

    def add(self, pipeline: Pipeline) -> None:
        """Offer ``pipeline``; :class:`ConfigurationError` if another has its name."""
        existing = self._pipelines.get(pipeline.name)
        if existing is not None and existing is not pipeline:
            raise ConfigurationError(f"two pipelines are named {pipeline.name!r}")
        self._pipelines[pipeline.name] = pipeline

    def get(self, name: str) -> Pipeline:
        """Return the pipeline called ``name``; :class:`NotFoundError` if there is none."""
        try:
            return self._pipelines[name]
        except KeyError:
            raise NotFoundError(f"no pipeline named {name!r}") from None

    def __iter__(self) -> Iterator[Pipeline]:
        return iter(self._pipelines.values())

    def __len__(self) -> int:
        return len(self._pipelines)

    def __contains__(self, name: object) -> bool:
        return name in self._pipelines
