"""The device check: CPU/accelerator mixes fail on a CPU-only machine, as they would on CUDA."""

import copy

import numpy as np
import pytest
import torch
from conftest import write_notebook
from papermill.exceptions import PapermillExecutionError
from torch import nn

from tsgen.book import execute
from tsgen.book.devices import VIRTUAL, DeviceCheck, DeviceMixError, on_accelerator
from tsgen.runtime import DEVICE_CHECK_ENV, VIRTUAL_DEVICE, resolve_device


@pytest.fixture
def check():
    with DeviceCheck() as mode:
        yield mode


def test_a_mask_drawn_on_the_cpu_times_inputs_on_the_device_fails(check):
    X = torch.randn(4, 5).to(VIRTUAL)
    hide = torch.rand(X.shape) < 0.5
    with pytest.raises(DeviceMixError, match=r"mul.*shape \(4, 5\)"):
        X * ~hide


def test_the_same_mask_drawn_on_the_device_passes(check):
    X = torch.randn(4, 5).to(VIRTUAL)
    hide = torch.rand(X.shape, device=X.device) < 0.5
    assert X.device == VIRTUAL
    assert on_accelerator(X * ~hide)


def test_zero_dim_host_scalars_and_host_indices_are_allowed(check):
    X = torch.randn(4, 5, device=VIRTUAL)
    assert on_accelerator(X * torch.tensor(2.0))
    rows = X[torch.tensor([0, 2])]
    assert on_accelerator(rows) and rows.shape == (2, 5)
    X[torch.tensor([1])] = 0.0
    with pytest.raises(DeviceMixError):
        torch.randn(4, 5) + X.sum()  # an accelerator scalar with host tensors is not


def test_a_module_moved_with_to_trains_and_comes_back(check):
    net = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 1))
    X = torch.randn(16, 5, device=VIRTUAL)
    with pytest.raises(DeviceMixError):
        net(X)  # its weights are still on the host
    net.to(X.device)
    assert all(on_accelerator(p) for p in net.parameters())
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(2):
        optimizer.zero_grad()
        net(X).pow(2).mean().backward()
        optimizer.step()
    assert on_accelerator(net[0].weight.grad)
    assert all(on_accelerator(p) for p in copy.deepcopy(net).parameters())
    net.load_state_dict({k: v.cpu() for k, v in net.state_dict().items()})
    assert on_accelerator(net[0].weight)
    assert not any(on_accelerator(p) for p in net.cpu().parameters())


def test_parameters_made_on_the_device_are_there(check):
    assert on_accelerator(nn.Linear(3, 3, device=VIRTUAL).weight)
    assert on_accelerator(torch.zeros(3).cuda())


def test_numpy_needs_a_move_to_the_host_first(check):
    X = torch.randn(3, device=VIRTUAL)
    with pytest.raises(DeviceMixError, match="numpy"):
        X.numpy()
    with pytest.raises(DeviceMixError):
        np.asarray(X)
    host = X.cpu()
    assert not on_accelerator(host) and on_accelerator(X)
    assert host.numpy().shape == (3,)


def test_moving_a_host_tensor_leaves_the_host_copy_on_the_host(check):
    host = torch.ones(3)
    there = host.to(VIRTUAL_DEVICE)
    assert there is not host
    assert on_accelerator(there) and not on_accelerator(host)


def test_the_mode_restores_parameter_creation_on_exit():
    before = nn.Parameter.__new__, torch.autograd.Variable.__new__
    with DeviceCheck():
        assert nn.Parameter.__new__ is not before[0]
    assert (nn.Parameter.__new__, torch.autograd.Variable.__new__) == before


def test_resolve_device_gives_the_virtual_accelerator_in_a_check(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("a real GPU checks itself")
    monkeypatch.setenv(DEVICE_CHECK_ENV, "1")
    assert resolve_device("cuda") == resolve_device("auto") == VIRTUAL_DEVICE
    assert resolve_device(VIRTUAL_DEVICE) == VIRTUAL_DEVICE
    assert resolve_device("cpu") == "cpu"
    monkeypatch.delenv(DEVICE_CHECK_ENV)
    with pytest.raises(RuntimeError):
        resolve_device("cuda")


def test_a_legacy_variable_follows_its_data(check):
    # PyPOTS's GRU-D decay layers multiply weights with Variable(buffer)
    eye = torch.eye(3, device=VIRTUAL)
    assert on_accelerator(torch.autograd.Variable(eye))


def test_a_chapter_run_under_the_check_fails_on_a_cpu_mask(tmp_path, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("a real GPU checks itself")
    path = write_notebook(
        tmp_path / "mask.ipynb",
        "seed = 0\ndevice = 'cuda'",
        "import torch\nfrom tsgen.book import Chapter\n"
        "chapter = Chapter.begin(globals())\n"
        "X = torch.ones(2, 3, device=chapter.device)\n"
        "print(chapter.device, (X * 2).sum().item())",
        "X * (torch.rand(X.shape) < 0.5)",
    )
    monkeypatch.setenv(DEVICE_CHECK_ENV, "1")
    with pytest.raises(PapermillExecutionError, match="DeviceMixError") as failed:
        execute(path, tmp_path / "out" / "mask.ipynb")
    assert failed.value.exec_count == 3  # the chapter itself ran on "cuda"


@pytest.mark.filterwarnings("ignore:To copy construct from a tensor")
def test_copies_of_mixed_collections_and_new_tensors_are_no_mix(check):
    state = {"weight": torch.ones(3, device=VIRTUAL), "counts": torch.ones(3)}
    copied = copy.deepcopy(state)
    assert on_accelerator(copied["weight"]) and not on_accelerator(copied["counts"])
    assert on_accelerator(state["weight"].new_tensor(torch.arange(3)))
