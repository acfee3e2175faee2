"""The chapter template (book/templates/chapter_template.ipynb) follows the chapter contract and runs."""

import json
import re
from pathlib import Path

import nbformat
import pytest

from tsgen.book import execute, notebook_parameters

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "book" / "templates" / "chapter_template.ipynb"


def sources(cells):
    return ["".join(cell.source) for cell in cells]


@pytest.fixture(scope="module")
def template():
    return nbformat.read(TEMPLATE, as_version=4)


def test_template_follows_the_chapter_contract(template):
    cells = template.cells
    code = [c for c in cells if c.cell_type == "code"]
    assert cells[0].cell_type == "markdown" and re.match(r"# \S+\. ", cells[0].source)
    assert code[0].metadata.get("tags") == ["parameters"]
    assert {"seed", "device"} <= set(notebook_parameters(TEMPLATE))
    assert "chapter = Chapter.begin(globals())" in code[1].source
    assert code[-1].source.strip() == "chapter.provenance()"
    assert cells[cells.index(code[-1]) - 1].source.strip() == "## Provenance"
    assert sum("chapter.save_results(" in s for s in sources(code)) == 1
    assert any("check-output" in c.metadata.get("tags", []) for c in code)
    plots = [s for s in sources(code) if "plt.subplots" in s]
    assert plots and all(s.rstrip().endswith("plt.show()") for s in plots)
    # the estimator contract and the experiments
    # call, not a loop over seeds in the notebook
    text = "\n".join(sources(code))
    assert (
        "from tsgen import adaptation" in text
        and "TTTForecaster(config, device=chapter.device)" in text
    )
    assert "experiments." in text and "from tsgen.book.tables import" in text
    assert not re.search(r"^\s*for .* in .*(seed|rep)", text, re.M)
    # Chapter.begin does both
    assert "plt.rcParams" not in text and "set_num_threads" not in text
    # stored clean, so a copy starts without someone else's outputs
    assert not any(c.outputs or c.execution_count for c in code)


def test_template_executes_and_writes_its_results(tmp_path, monkeypatch):
    # inherited by the kernel; keeps book/results clean
    monkeypatch.setenv("TSGEN_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("TSGEN_PROFILE", "default")
    execute(TEMPLATE, tmp_path / "chapter.ipynb")
    executed = nbformat.read(tmp_path / "chapter.ipynb", as_version=4)
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert any(o.get("data", {}).get("image/png") for c in code for o in c.outputs), (
        "the plot did not render"
    )
    record = json.loads((tmp_path / "chapter_template.default.json").read_text())
    assert [row["model"] for row in record["rows"]] == ["plain", "it3", "last value"]
    assert all(row["mae mean"] > 0 and row["mse mean"] > 0 for row in record["rows"])
    assert (
        record["rows"][1]["mae_adapted mean"] > 0
        and record["rows"][0]["mae_adapted mean"] is None
    )
    assert "seed=0" in record["provenance"]["parameters"]
