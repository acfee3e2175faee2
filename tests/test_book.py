import json
import os
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
import yaml
from conftest import write_notebook

from tsgen.book import (
    Chapter,
    check_parameters,
    execute,
    load_profile,
    notebook_parameters,
    run_notebooks,
)
from tsgen.book.__main__ import main
from tsgen.book.chapter import resolve_device

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture
def tiny_notebook(tmp_path):
    return write_notebook(
        tmp_path / "notebooks" / "tiny.ipynb",
        "seed = 0\ndevice = 'cpu'\nscale = 2",
        "print(seed * scale)",
    )


def test_unknown_parameter_is_rejected_with_the_valid_names(tiny_notebook):
    check_parameters(tiny_notebook, {"seed": 3})
    with pytest.raises(
        ValueError,
        match=r"unknown parameter\(s\) n_epochs; valid names are: seed, device, scale",
    ):
        check_parameters(tiny_notebook, {"seed": 3, "n_epochs": 5})


def test_execute_injects_parameters(tiny_notebook, tmp_path):
    out = tmp_path / "out" / "tiny.ipynb"
    execute(tiny_notebook, out, {"seed": 21})
    printed = nbformat.read(out, as_version=4).cells[-1].outputs[0]["text"]
    assert printed.strip() == "42"


def test_run_notebooks_checks_everything_before_running(tiny_notebook, tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "typo.yaml").write_text("tiny:\n  sead: 1\n")
    (profiles / "stray.yaml").write_text("other_chapter:\n  seed: 1\n")
    kwargs = dict(
        notebooks_dir=tiny_notebook.parent,
        output_dir=tmp_path / "out",
        profiles_dir=profiles,
    )
    with pytest.raises(ValueError, match="sead"):
        run_notebooks(profile="typo", **kwargs)
    with pytest.raises(ValueError, match="other_chapter"):
        run_notebooks(profile="stray", **kwargs)
    with pytest.raises(ValueError, match="unknown chapter"):
        run_notebooks(names=["nope"], **kwargs)
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        run_notebooks(profile="huge", **kwargs)
    assert not (tmp_path / "out").exists()


def test_cli_rejects_unknown_parameter(tiny_notebook, capsys):
    code = main(
        ["tiny", "--notebooks-dir", str(tiny_notebook.parent), "-p", "epochs", "3"]
    )
    assert code == 2
    assert "valid names are: seed, device, scale" in capsys.readouterr().err


def test_parameter_types_are_checked_against_the_defaults(tiny_notebook):
    nb = nbformat.read(tiny_notebook, as_version=4)
    nb.cells[0].source += "\nlr = 0.001\nmodel_path = None\nflag = False"
    nbformat.write(nb, tiny_notebook)
    checked = check_parameters(
        tiny_notebook, {"lr": "1e-3", "scale": 3, "model_path": "a/b", "flag": True}
    )
    assert checked == {"lr": 1e-3, "scale": 3, "model_path": "a/b", "flag": True}
    assert check_parameters(tiny_notebook, {"lr": 2}) == {"lr": 2.0}
    assert check_parameters(tiny_notebook, {"scale": None}) == {"scale": None}
    for name, value, expected in [
        ("scale", "3", "expects int like its default 2; got str '3'"),
        ("scale", 2.5, "expects int like its default 2; got float 2.5"),
        ("flag", 1, "expects bool like its default False; got int 1"),
        ("lr", "fast", "expects float like its default 0.001; got str 'fast'"),
        ("device", 0, "expects str"),
    ]:
        with pytest.raises(TypeError, match=f"parameter {name} {expected}"):
            check_parameters(tiny_notebook, {name: value})


def test_cli_rejects_a_wrongly_typed_parameter(tiny_notebook, capsys):
    code = main(
        ["tiny", "--notebooks-dir", str(tiny_notebook.parent), "-p", "scale", "x"]
    )
    assert code == 2
    assert "parameter scale expects int" in capsys.readouterr().err


def test_a_chapter_executes_once_per_change_of_its_inputs(
    tiny_notebook, tmp_path, capsys
):
    out = tmp_path / "out"
    kwargs = dict(notebooks_dir=tiny_notebook.parent, output_dir=out)
    assert set(run_notebooks(**kwargs)) == {"tiny"}
    assert run_notebooks(**kwargs) == {}
    assert "tiny is up to date" in capsys.readouterr().out
    # other parameters, a changed cell, or --force: executed again
    assert set(run_notebooks(extra={"scale": 3}, **kwargs)) == {"tiny"}
    assert set(run_notebooks(extra={"scale": 3}, force=True, **kwargs)) == {"tiny"}
    nb = nbformat.read(tiny_notebook, as_version=4)
    nb.cells[-1].source = "print(seed + scale)"
    nbformat.write(nb, tiny_notebook)
    assert set(run_notebooks(extra={"scale": 3}, **kwargs)) == {"tiny"}
    printed = nbformat.read(out / "tiny.ipynb", as_version=4).cells[-1].outputs
    assert printed[0]["text"].strip() == "3"


def test_the_chapters_own_results_of_other_profiles_are_among_its_inputs(
    tiny_notebook, tmp_path, monkeypatch
):
    from tsgen.book import runner

    monkeypatch.setattr(runner, "REPO", tmp_path)
    committed = tmp_path / "book" / "results"
    committed.mkdir(parents=True)

    def digest():
        return runner.inputs_digest(tiny_notebook, "default", {})

    before = digest()
    (committed / "tiny.default.json").write_text("{}")  # its own output: no input
    assert digest() == before
    (committed / "tiny.reference.json").write_text("{}")  # another profile's run
    assert digest() != before


def test_a_deleted_results_file_makes_the_chapter_run_again(tiny_notebook, tmp_path):
    nb = nbformat.read(tiny_notebook, as_version=4)
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "import os, pathlib\n"
            "d = pathlib.Path(os.environ['TSGEN_RESULTS_DIR'])\n"
            "d.mkdir(exist_ok=True)\n"
            "(d / 'tiny.default.json').write_text('{}')"
        )
    )
    nbformat.write(nb, tiny_notebook)
    out = tmp_path / "out"
    kwargs = dict(notebooks_dir=tiny_notebook.parent, output_dir=out)
    assert set(run_notebooks(**kwargs)) == {"tiny"}
    metadata = nbformat.read(out / "tiny.ipynb", as_version=4).metadata["tsgen"]
    assert metadata["results"] == ["tiny.default.json"]
    assert run_notebooks(**kwargs) == {}
    (out / "results" / "tiny.default.json").unlink()
    assert set(run_notebooks(**kwargs)) == {"tiny"}
    assert "TSGEN_RESULTS_DIR" not in os.environ


def test_kernels_run_with_the_pinned_numerics_unless_overridden(
    tiny_notebook, tmp_path, monkeypatch
):
    nb = nbformat.read(tiny_notebook, as_version=4)
    nb.cells[
        -1
    ].source = "import os\nprint(os.environ['ATEN_CPU_CAPABILITY'], os.environ['OMP_NUM_THREADS'])"
    nbformat.write(nb, tiny_notebook)
    out = tmp_path / "out"
    kwargs = dict(notebooks_dir=tiny_notebook.parent, output_dir=out)

    def printed():
        return nbformat.read(out / "tiny.ipynb", as_version=4).cells[-1].outputs[0]

    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    run_notebooks(**kwargs)
    assert printed()["text"].split() == ["avx2", "2"]
    assert "ATEN_CPU_CAPABILITY" not in os.environ
    # an override is an input of its own: the chapter runs again, with it
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert set(run_notebooks(**kwargs)) == {"tiny"}
    assert printed()["text"].split() == ["avx2", "1"]


def test_default_profile_needs_no_file(tmp_path):
    assert load_profile("default", tmp_path) == {}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_contract(notebook):
    """First code cell tagged parameters, seed and device among them, stored outputs, no errors."""
    nb = json.loads(notebook.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", [])
    assert {"seed", "device"} <= set(notebook_parameters(notebook))
    assert any(c["outputs"] for c in code), (
        "stored without outputs: run `make notebooks`"
    )
    assert not [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert "Chapter.begin(globals())" in "".join(code[1]["source"])
    assert "chapter.provenance()" in "".join(code[-1]["source"])


@pytest.mark.parametrize(
    "profile", sorted(p.stem for p in (ROOT / "book" / "profiles").glob("*.yaml"))
)
def test_profiles_name_real_chapters_and_parameters(profile):
    overrides = load_profile(profile, ROOT / "book" / "profiles")
    for stem, params in overrides.items():
        check_parameters(ROOT / "notebooks" / f"{stem}.ipynb", params)


def test_chapter_collects_parameters_and_leaves_global_rngs_alone():
    import torch

    namespace = {
        "In": [],
        "Out": {},
        "np": np,
        "print": print,
        "_hidden": 1,
        "seed": 5,
        "device": "cpu",
        "rates": [0.3],
    }
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    chapter = Chapter.begin(namespace)
    assert chapter.parameters == {"seed": 5, "device": "cpu", "rates": [0.3]}
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state)
    with pytest.raises(ValueError, match="seed"):
        Chapter.begin({**namespace, "seed": "abc"})
    table = chapter.provenance_table()
    assert {"parameters", "tsgen", "git commit", "torch", "device", "wall time"} <= set(
        table
    )
    assert "seed=5" in table["parameters"]


def test_chapter_requires_seed_and_device():
    with pytest.raises(ValueError, match="seed"):
        Chapter.begin({"device": "cpu"})


def test_device_resolution():
    import torch

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_an_error_cell_fails_the_run(tiny_notebook, tmp_path):
    from papermill.exceptions import PapermillExecutionError

    nb = nbformat.read(tiny_notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("raise RuntimeError('broken chapter')"))
    nbformat.write(nb, tiny_notebook)
    with pytest.raises(PapermillExecutionError, match="broken chapter"):
        execute(tiny_notebook, tmp_path / "out.ipynb")


def test_save_results_writes_rows_with_provenance(tmp_path, monkeypatch):
    import pandas as pd

    monkeypatch.setenv("TSGEN_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("TSGEN_PROFILE", "gpu")
    chapter = Chapter.begin({"seed": 1, "device": "cpu"})
    table = pd.DataFrame(
        {"model": ["a", "b"], "mae": [np.float32(0.25), 0.5], "k": [np.nan, np.inf]}
    )
    # nothing to show in a chapter
    assert chapter.save_results("99_demo", table, notes="smoke") is None
    path = tmp_path / "99_demo.gpu.json"
    record = json.loads(path.read_text())
    assert record["profile"] == "gpu" and record["notes"] == "smoke"
    assert record["rows"] == [
        {"model": "a", "mae": 0.25, "k": None},
        {"model": "b", "mae": 0.5, "k": "inf"},
    ]
    assert record["provenance"]["parameters"] == "seed=1, device='cpu'"
    with pytest.raises(ValueError, match="at least one row"):
        chapter.save_results("99_demo", [])


def test_sweep_grid_names_and_commands():
    from tsgen.book.sweep import grid_points, point_commands, point_name

    points = grid_points({"rate": [0.1, 0.5], "pattern": ["point"]})
    assert points == [
        {"rate": 0.1, "pattern": "point"},
        {"rate": 0.5, "pattern": "point"},
    ]
    assert point_name("01_data", points[0]) == "01_data__rate=0.1__pattern=point"
    assert point_name("01_data", {"rates": [0.1, 0.3]}) == "01_data__rates=0.1,0.3"
    commands = point_commands("01_data", {"rate": [0.1]}, "out", base={"rates": [0.2]})
    assert commands == [
        "TSGEN_RESULTS_DIR=out/results/01_data__rate=0.1 TSGEN_PROFILE=default "
        "python -m tsgen.book 01_data --profile default --notebooks-dir notebooks "
        "--output-dir out/01_data__rate=0.1 -p rates '[0.2]' -p rate 0.1"
    ]
    with pytest.raises(ValueError, match="non-empty list"):
        grid_points({"rate": 0.1})
    with pytest.raises(ValueError, match="at least one parameter"):
        grid_points({})


def test_sweep_runs_points_in_parallel_and_collects(tmp_path):
    from tsgen.book.sweep import run_sweep

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "seed = 0\ndevice = 'cpu'\nscale = 1.0", metadata={"tags": ["parameters"]}
        ),
        nbformat.v4.new_code_cell(
            "from tsgen.book import Chapter\nchapter = Chapter.begin(globals())\n"
            "chapter.save_results('99_sweep', [{'value': scale * (seed + 1)}])"
        ),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    nbformat.write(nb, notebooks / "99_sweep.ipynb")
    table = run_sweep(
        "99_sweep",
        {"scale": [1.0, 3.0], "seed": [0, 1]},
        tmp_path / "out",
        jobs=2,
        notebooks_dir=notebooks,
        profiles_dir=tmp_path,
    )
    assert table[["scale", "seed", "value"]].values.tolist() == [
        [1.0, 0, 1.0],
        [1.0, 1, 2.0],
        [3.0, 0, 3.0],
        [3.0, 1, 6.0],
    ]
    assert (tmp_path / "out" / "99_sweep__scale=3.0__seed=1.ipynb").exists()
    assert (tmp_path / "out" / "sweep.csv").exists()
    with pytest.raises(ValueError, match="valid names"):
        run_sweep(
            "99_sweep",
            {"scael": [1.0]},
            tmp_path / "out",
            notebooks_dir=notebooks,
            profiles_dir=tmp_path,
        )


def test_a_profile_extends_another_per_chapter(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "a:\n  device: cuda\n  epochs: 100\n  width: 64\nb:\n  n: 5\n"
    )
    (tmp_path / "capped.yaml").write_text(
        "extends: base\na:\n  epochs: 1\nc:\n  n: 2\n"
    )
    assert load_profile("capped", tmp_path) == {
        "a": {"device": "cuda", "epochs": 1, "width": 64},
        "b": {"n": 5},
        "c": {"n": 2},
    }
    (tmp_path / "orphan.yaml").write_text("extends: gone\na:\n  epochs: 1\n")
    with pytest.raises(
        ValueError, match="unknown profile 'gone'.*extended by 'orphan'"
    ):
        load_profile("orphan", tmp_path)
    (tmp_path / "loop.yaml").write_text("extends: loop\n")
    with pytest.raises(ValueError, match="cycle"):
        load_profile("loop", tmp_path)


# What gpu-check may change in gpu.yaml: the amount of work (counts, days simulated,
# the smaller real cohort, the conditions of a grid that repeat one code path),
# never a shape, a length or an architecture.
CAPPED_WORK = re.compile(
    r"(grid_)?n_(seeds|train|val|test|sines|samples|windows|pretrain|target)|.*seeds"
    r"|.*(epochs|iterations|steps|repeats|_every)|patience|time_published"
    r"|datasets|missing_rates|days|real_data"
    # where a run keeps its resumable cells: the capped run must not reuse the real one's
    r"|work_dir"
)


def test_gpu_check_caps_only_the_work_of_the_gpu_profile():
    profiles = ROOT / "book" / "profiles"
    own = yaml.safe_load((profiles / "gpu-check.yaml").read_text())
    assert own.pop("extends") == "gpu"
    changed = {f"{stem}.{name}" for stem, p in own.items() for name in p}
    assert {c for c in changed if not CAPPED_WORK.fullmatch(c.split(".")[1])} == set()
    capped = load_profile("gpu-check", profiles)
    assert set(capped) == set(load_profile("gpu", profiles))
    assert {p["device"] for p in capped.values()} == {"cuda"}


def test_chapters_run_two_at_a_time_and_the_results_chapter_last(tmp_path):
    writes = (
        "import os, pathlib, time\n"
        "start = time.time()\n"
        "time.sleep(2)\n"
        "d = pathlib.Path(os.environ['TSGEN_RESULTS_DIR'])\n"
        "d.mkdir(exist_ok=True)\n"
        "(d / f'{name}.default.json').write_text(f'[{start}, {time.time()}]')"
    )
    for name in ("a", "b"):
        write_notebook(tmp_path / "nb" / f"{name}.ipynb", f"name = {name!r}", writes)
    write_notebook(
        tmp_path / "nb" / "z.ipynb",
        "results_directory = None",
        "import os, pathlib\n"
        "d = pathlib.Path(os.environ['TSGEN_RESULTS_DIR'])\n"
        "print(sorted(p.name for p in d.glob('*.json')))",
    )
    out = tmp_path / "out"
    times = run_notebooks(tmp_path / "nb", output_dir=out, jobs=2)
    assert set(times) == {"a", "b", "z"}
    printed = nbformat.read(out / "z.ipynb", as_version=4).cells[-1].outputs[0]
    assert printed["text"].strip() == "['a.default.json', 'b.default.json']"
    (a0, a1), (b0, b1) = (
        json.loads((out / "results" / f"{n}.default.json").read_text()) for n in "ab"
    )
    assert a0 < b1 and b0 < a1  # a and b ran at the same time
    metadata = nbformat.read(out / "a.ipynb", as_version=4).metadata["tsgen"]
    assert metadata["results"] == ["a.default.json"]
