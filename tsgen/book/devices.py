"""A CPU-only check that no host tensor meets an accelerator tensor: a GPU run's device bugs, found without a GPU.

Code that builds a mask with ``torch.rand(M.shape)`` (on the CPU) and multiplies
it with inputs on ``chapter.device`` runs on a CPU machine and crashes on CUDA
(``Expected all tensors to be on the same device``). With ``TSGEN_DEVICE_CHECK=1``
(``make test-gpu-profile``), :func:`tsgen.runtime.resolve_device` turns
``"cuda"`` (and ``"auto"``) into a *virtual accelerator*, :data:`VIRTUAL`
(``cpu:0``, which every CPU kernel accepts), and :meth:`Chapter.begin
<tsgen.book.Chapter.begin>` enters :class:`DeviceCheck` for the whole kernel.

:class:`DeviceCheck` is a :class:`torch.overrides.TorchFunctionMode`: it sees
every torch function and tensor method called from Python and keeps a set of
the tensors that live on the virtual accelerator:

* placed there: ``.to(VIRTUAL)``, ``.cuda()``, a factory or conversion with
  ``device=VIRTUAL`` (or ``"cuda"``), ``.to(other)`` with ``other`` there;
  a ``param.data = value`` or ``p.grad`` follows its tensor, so
  ``nn.Module.to`` moves a module's parameters, and ``nn.Parameter(data)`` or
  ``Variable(data)`` is where its data is;
* every other op's outputs are there when any of its tensor inputs is;
* ``.cpu()`` / ``.to("cpu")`` return a copy on the host (a distinct tensor, as
  on CUDA), and ``tensor.device`` is ``VIRTUAL`` for a tensor there, so
  ``device=x.device`` idioms follow it.

An op that mixes tensors there with host tensors of one or more dimensions is a
:class:`DeviceMixError` naming the op; so is ``.numpy()`` (or
``np.asarray``) on one. What CUDA itself allows is allowed: 0-dim host tensors
as scalars, host index tensors in ``x[idx]`` and ``x[idx] = v`` (whose value is
not checked either), ``copy_`` across devices.

What it cannot see:

* chapter 5's TTM training loop. It runs inside the Hugging Face ``Trainer``,
  which moves the model and every batch to its own device, here the real CPU
  (``use_cpu`` is off, as on a GPU, and torch has no CUDA): the loop runs on
  host tensors and nothing in it is checked. Checked around it: the
  forecaster's move back to its device, and ``predict``, which runs the same
  model forward on batches it moves itself.
* work that does not pass through a Python-level torch call (C++ inside an op).
* a CPU ``torch.Generator`` used to draw on the accelerator: generators are not
  tensors, and ``torch.Generator("cpu:0")`` is an ordinary CPU generator.
* branches taken only when ``torch.cuda.is_available()`` (it stays ``False``)
  or on ``x.device.type == "cuda"`` / ``x.is_cuda`` (a tensor there reports
  type ``"cpu"``): their CPU branch runs.
* CUDA failures that are not device mixes: memory, kernels missing for a dtype,
  nondeterminism.
"""

from __future__ import annotations

import weakref

import torch
from torch.overrides import TorchFunctionMode

from tsgen.runtime import VIRTUAL_DEVICE

__all__ = ["VIRTUAL", "DeviceCheck", "DeviceMixError", "enable", "on_accelerator"]

VIRTUAL = torch.device(VIRTUAL_DEVICE)

# Python-level property accessors reach the mode as the descriptors' __get__/__set__.
_DEVICE = torch.Tensor.device.__get__
_DATA_SET, _GRAD_SET = torch.Tensor.data.__set__, torch.Tensor.grad.__set__
_TO_NUMPY = {torch.Tensor.numpy, torch.Tensor.__array__}
# copies across devices (as CUDA allows them) and questions about tensors' types
_CROSS_DEVICE = {
    torch.Tensor.copy_,
    torch.Tensor.__setitem__,
    torch._has_compatible_shallow_copy_type,
}
# ops whose other arguments are not operands: an index, deepcopy's memo
_SELF_ONLY = {torch.Tensor.__getitem__, torch.Tensor.__deepcopy__}


class DeviceMixError(RuntimeError):
    """An op mixed host tensors with tensors on the (virtual) accelerator."""


# id -> tensor for the tensors on the virtual accelerator; an entry goes with its
# tensor, so a reused id is never mistaken for a tagged one.
_on_accelerator: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def on_accelerator(tensor: torch.Tensor) -> bool:
    """Whether ``tensor`` lives on the virtual accelerator."""
    return _on_accelerator.get(id(tensor)) is tensor


def _place(tensor: torch.Tensor, there: bool) -> None:
    if there:
        _on_accelerator[id(tensor)] = tensor
    else:
        _on_accelerator.pop(id(tensor), None)


def _is_accelerator(device) -> bool:
    device = torch.device(device)
    return device.type == "cuda" or device == VIRTUAL


def _tensors(tree, found: list | None = None) -> list[torch.Tensor]:
    """The tensors in nested tuples, lists and dicts (torch's pytree is slower, on every op)."""
    found = [] if found is None else found
    if isinstance(tree, torch.Tensor):
        found.append(tree)
    elif isinstance(tree, (list, tuple)):
        for item in tree:
            _tensors(item, found)
    elif isinstance(tree, dict):
        for item in tree.values():
            _tensors(item, found)
    return found


def _name(func) -> str:
    return getattr(func, "__qualname__", None) or getattr(func, "__name__", repr(func))


_CONSTRUCTORS = (torch.nn.Parameter, torch.autograd.Variable)


def _following_data(new):
    """``new`` of a tensor class, placing what it makes where its data is."""

    def made_where_its_data_is(cls, *args, **kwargs):
        made = new(cls, *args, **kwargs)
        data = args[0] if args else kwargs.get("data")
        if isinstance(data, torch.Tensor) and on_accelerator(data):
            _place(made, True)
        return made

    return made_where_its_data_is


class DeviceCheck(TorchFunctionMode):
    """Tag tensors on the virtual accelerator; raise :class:`DeviceMixError` when an op mixes them with host tensors.

    ``nn.Parameter(data)`` and ``torch.autograd.Variable(data)`` (still in
    PyPOTS) do not pass through torch functions: while the mode is on, one made
    from data on the accelerator is placed there too.
    """

    def __enter__(self):
        self._constructors = [(c, c.__dict__.get("__new__")) for c in _CONSTRUCTORS]
        for cls in _CONSTRUCTORS:
            cls.__new__ = _following_data(cls.__new__)
        return super().__enter__()

    def __exit__(self, *exc):
        for cls, new in self._constructors:
            if new is None:
                del cls.__new__  # inherited again
            else:
                cls.__new__ = new
        return super().__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func == _DEVICE:
            return VIRTUAL if on_accelerator(args[0]) else func(*args)
        if func in (_DATA_SET, _GRAD_SET):
            target, value = args
            if func == _GRAD_SET and value is not None:
                _check(func, [target, value])
            func(*args)
            if func == _DATA_SET:
                _place(target, on_accelerator(value))
            return None
        if func in _TO_NUMPY and on_accelerator(args[0]):
            raise DeviceMixError(
                f"{_name(func)} on a tensor on the accelerator: "
                "move it to the host first (.cpu())"
            )
        if func == torch.Tensor.cuda:  # torch here has no CUDA
            func, args, kwargs = torch.Tensor.to, (args[0], VIRTUAL), {}
        there, kwargs, args = _target(func, args, kwargs)
        if there is None and func not in _CROSS_DEVICE:
            inputs = _tensors(args[:1] if func in _SELF_ONLY else (args, kwargs))
            there = _check(func, inputs)
        result = func(*args, **kwargs)
        return _placed(result, bool(there), args, kwargs, converts=there is not None)


def _target(func, args, kwargs):
    """Whether ``func`` places its result on the accelerator (``True``/``False``), or ``None`` when its inputs decide.

    A ``"cuda"`` device becomes :data:`VIRTUAL` (torch here has no CUDA).
    """
    if func == torch.Tensor.cpu:
        return False, kwargs, args
    if func == torch.Tensor.to:
        rest = args[1:]
        if rest and isinstance(rest[0], torch.Tensor):
            return on_accelerator(rest[0]), kwargs, args
        device = torch._C._nn._parse_to(*rest, **kwargs)[0]
        if device is None:
            return None, kwargs, args
        there = _is_accelerator(device)
        if device.type == "cuda":
            if "device" in kwargs:
                kwargs["device"] = VIRTUAL
            else:
                args = (args[0], VIRTUAL, *args[2:])
        return there, kwargs, args
    device = kwargs.get("device")
    if device is None:
        # new_tensor(data) copies data to where the tensor is
        there = on_accelerator(args[0]) if func == torch.Tensor.new_tensor else None
        return there, kwargs, args
    there = _is_accelerator(device)
    if there:
        kwargs["device"] = VIRTUAL
    return there, kwargs, args


def _check(func, inputs: list[torch.Tensor]) -> bool:
    """Whether any of ``inputs`` is on the accelerator; an error if host tensors (beyond 0-dim scalars) meet them."""
    there = [t for t in inputs if on_accelerator(t)]
    host = [t for t in inputs if not on_accelerator(t) and t.dim() > 0]
    if there and host:
        shapes = ", ".join(str(tuple(t.shape)) for t in host)
        raise DeviceMixError(
            f"{_name(func)} mixes tensors on the accelerator ({VIRTUAL_DEVICE} stands "
            f"for cuda) with host (CPU) tensors of shape {shapes}: this fails on CUDA "
            "(Expected all tensors to be on the same device). Create or move them "
            "with device=... (e.g. chapter.device or x.device)."
        )
    return bool(there)


def _placed(result, there: bool, args, kwargs, converts: bool):
    """``result`` with its tensors placed; a conversion that returned an input itself returns a copy."""
    inputs = {id(t) for t in _tensors((args, kwargs))}
    if isinstance(result, torch.Tensor) and converts and id(result) in inputs:
        if on_accelerator(result) == there:
            return result
        result = result.clone()
    for tensor in _tensors(result):
        # an op returning an input (in place, or a no-op) leaves it where it was
        if id(tensor) not in inputs or converts:
            _place(tensor, there)
    return result


def enable() -> DeviceCheck | None:
    """Enter :class:`DeviceCheck` for the rest of the process (once); ``None`` where CUDA is real and checks itself."""
    global _active
    if _active is None and not torch.cuda.is_available():
        _active = DeviceCheck()
        _active.__enter__()
    return _active


_active: DeviceCheck | None = None
