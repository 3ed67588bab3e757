"""A latency look-up table measured on the user's own machine.

Latency does not add up as neatly as FLOPs, but for single-path supernets
the usual approximation (ProxylessNAS, FBNet, OFA) works well: the latency
of a subnet is the latency of the fixed part plus the latency of each chosen
candidate, each timed alone on the input it receives in the network. A
:class:`LatencyLUT` holds those timings, per choice and per input shape, so
that a search can use latency as a constraint without running every subnet.

JSON layout (``version`` 1)::

    {"version": 1,
     "meta": {"device": ..., "torch": ..., "threads": ..., ...},
     "ops": {"<mutable name>": {"<input shape>": {"<choice>": ms}}},
     "models": {"<model input shape>": {
         "static_ms": ms,
         "inputs": {"<mutable name>": "<input shape>"}}}}
"""
import json
import os
import os.path as osp
import platform
import tempfile
import weakref
from typing import Any, Callable, Dict, Optional, Sequence

import torch
from torch import nn

from mmrazor.registry import TASK_UTILS
from .counter import build_from_spec
from .resource_estimator import (ResourceEstimator, _EvalMode,
                                 chosen_candidates, time_function)

LUT_VERSION = 1


def _shape_key(shape: Sequence[int]) -> str:
    return 'x'.join(str(int(s)) for s in shape)


def _spec_str(spec: Any) -> str:
    """A readable key of a unit's input spec (``'1x64x56x56'`` for one
    tensor)."""
    args, kwargs = spec
    parts = [repr(a) if not hasattr(a, 'shape') else _shape_key(a.shape)
             for a in args]
    parts += [f'{k}={v!r}' for k, v in sorted(kwargs.items())]
    return ','.join(parts)


@TASK_UTILS.register_module()
class LatencyLUT:
    """Per-choice, per-input-shape latencies of a supernet's module
    mutables, plus the latency of its fixed part.

    Build it with :meth:`build` on the machine the model will run on, save
    it with :meth:`save`, and later :meth:`load` it and :meth:`predict` the
    latency of any subnet (the model's current choices).

    Args:
        ops (dict, optional): Mutable name -> input shape -> choice -> ms.
        models (dict, optional): Model input shape -> ``static_ms`` and
            ``inputs`` (mutable name -> its input shape).
        meta (dict, optional): Where and how the table was measured.
    """

    def __init__(self,
                 ops: Optional[Dict[str, Dict[str, Dict[str, float]]]] = None,
                 models: Optional[Dict[str, Dict[str, Any]]] = None,
                 meta: Optional[Dict[str, Any]] = None) -> None:
        self.ops = ops or {}
        self.models = models or {}
        self.meta = meta or {}
        self._modules: 'weakref.WeakKeyDictionary' = \
            weakref.WeakKeyDictionary()

    # ------------------------------------------------------------ build
    @classmethod
    def build(cls,
              model: nn.Module,
              input_shape: Sequence[int] = (1, 3, 224, 224),
              warmup: int = 3,
              runs: int = 10,
              forward_fn: Optional[Callable] = None,
              lut: Optional['LatencyLUT'] = None) -> 'LatencyLUT':
        """Time every candidate of every single-path module mutable of
        ``model`` on the input it receives, and the fixed part.

        Args:
            model (nn.Module): A supernet (its current subnet is used to
                time the fixed part).
            input_shape (tuple[int]): Model input shape. Defaults to
                ``(1, 3, 224, 224)``.
            warmup (int): Untimed runs per op. Defaults to 3.
            runs (int): Timed runs per op (median kept). Defaults to 10.
            forward_fn (callable, optional): As in
                :class:`ResourceEstimator`.
            lut (LatencyLUT, optional): Extend this table instead of
                starting a new one (e.g. for another input shape).

        Returns:
            LatencyLUT: The table.
        """
        estimator = ResourceEstimator(
            input_shape=input_shape,
            forward_fn=forward_fn,
            latency_warmup=warmup,
            latency_runs=runs)
        shape = estimator.input_shape
        structure, plan = estimator._get_plan(model, shape)
        if not plan.fast:
            raise NotImplementedError(
                'the supernet cannot be split into a fixed part and '
                f'separately timed candidates: {plan.reason}')
        dynamic = [u.name for u in structure.units.values()
                   if u.kind == 'dynamic']
        if dynamic:
            raise NotImplementedError(
                'latency tables cover module mutables only; the model has '
                f'dynamic ops with mutable channels: {dynamic[:5]}')
        table = lut if lut is not None else cls()
        table.meta.update(machine_meta())
        inputs: Dict[str, str] = {}
        current_ms = 0.0
        with _EvalMode(model), torch.no_grad():
            for unit in structure.units.values():
                calls = plan.states[unit.name].calls
                if len(calls) != 1:
                    raise NotImplementedError(
                        f'mutable {unit.name!r} ran {len(calls)} times '
                        'in one forward pass; a latency table needs one')
                spec = calls[0][0]
                key = _spec_str(spec)
                inputs[unit.name] = key
                per_choice = table.ops.setdefault(unit.name, {}).setdefault(
                    key, {})
                args, kwargs = build_from_spec(spec)
                for choice, candidate in unit.module.candidates.items():
                    per_choice[choice] = time_function(
                        lambda: candidate(*args, **kwargs), warmup, runs,
                        _device_of(model))
                for choice in chosen_candidates(unit.module):
                    current_ms += per_choice[choice]
            total_ms = estimator.measure_latency(model)
        table.models[_shape_key(shape)] = dict(
            static_ms=max(0.0, total_ms - current_ms), inputs=inputs)
        return table

    # ---------------------------------------------------------- predict
    def predict(self,
                model: nn.Module,
                input_shape: Sequence[int] = (1, 3, 224, 224)) -> float:
        """Latency (ms) of the model's current subnet from the table.

        Args:
            model (nn.Module): The supernet the table was built for.
            input_shape (tuple[int]): Model input shape.

        Returns:
            float: Predicted milliseconds.

        Raises:
            KeyError: The table has no entry for the input shape, a
                mutable, its input or one of its choices (the message names
                it).
        """
        key = _shape_key(input_shape)
        if key not in self.models:
            raise KeyError(f'the latency table has no entry for input shape '
                           f'{key!r}; it holds {sorted(self.models)}')
        entry = self.models[key]
        modules = self._modules.get(model)
        if modules is None:
            named = dict(model.named_modules())
            modules = {name: named.get(name) for name in entry['inputs']}
            self._modules[model] = modules
        total = float(entry['static_ms'])
        for name, in_key in entry['inputs'].items():
            mutable = modules.get(name)
            if mutable is None:
                raise KeyError(f'the latency table names mutable {name!r}, '
                               'which the model does not have')
            timings = self.ops.get(name, {}).get(in_key)
            if timings is None:
                raise KeyError(f'the latency table has no timings of '
                               f'{name!r} on input {in_key!r}')
            for choice in chosen_candidates(mutable):
                if choice not in timings:
                    raise KeyError(f'the latency table has no timing of '
                                   f'choice {choice!r} of {name!r}; it has '
                                   f'{sorted(timings)}')
                total += timings[choice]
        return total

    # ---------------------------------------------------------- storage
    def to_dict(self) -> Dict[str, Any]:
        """The table as JSON-ready data."""
        return dict(
            version=LUT_VERSION,
            meta=self.meta,
            ops=self.ops,
            models=self.models)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> 'LatencyLUT':
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: ``data`` is not a version-1 latency table.
        """
        if not isinstance(data, dict) or data.get('version') != LUT_VERSION:
            found = data.get('version') if isinstance(data, dict) else data
            raise ValueError(f'not a version-{LUT_VERSION} latency table '
                             f'(version: {found!r})')
        for name in ('ops', 'models'):
            if not isinstance(data.get(name), dict):
                raise ValueError(f'latency table field {name!r} must be a '
                                 f'dict, got {type(data.get(name)).__name__}')
        return cls(ops=data['ops'], models=data['models'],
                   meta=data.get('meta', {}))

    def save(self, path: str) -> None:
        """Write the table as JSON atomically (a temporary file in the same
        folder, then a rename), so a reader never sees half a file.

        Args:
            path (str): Target file.
        """
        folder = osp.dirname(osp.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix='.' + osp.basename(path) + '.', suffix='.tmp', dir=folder)
        try:
            with os.fdopen(fd, 'w') as f:
                json.dump(self.to_dict(), f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if osp.exists(tmp):
                os.remove(tmp)
            raise

    @classmethod
    def load(cls, path: str) -> 'LatencyLUT':
        """Read a table written by :meth:`save`.

        Args:
            path (str): The JSON file.

        Returns:
            LatencyLUT: The table.
        """
        if not osp.isfile(path):
            raise FileNotFoundError(f'latency table {path!r} does not exist')
        with open(path) as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as err:
                raise ValueError(f'latency table {path!r} is not valid '
                                 f'JSON: {err}') from None
        return cls.from_dict(data)


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device('cpu')


def machine_meta() -> Dict[str, Any]:
    """Where timings were taken: host, CPU/GPU, torch version, threads."""
    meta: Dict[str, Any] = dict(
        host=platform.node(),
        machine=platform.machine(),
        processor=platform.processor(),
        torch=torch.__version__,
        threads=torch.get_num_threads())
    if torch.cuda.is_available():
        meta['cuda_device'] = torch.cuda.get_device_name()
    return meta
