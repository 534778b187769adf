"""notebooks/walkthrough.ipynb runs top to bottom (nbclient, kernel python3), so it cannot rot."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "walkthrough.ipynb"


def test_walkthrough_executes():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and not any(c.get("outputs") for c in code), "commit the notebook without outputs"
    imports = [line for c in code for line in c.source.splitlines()
               if line.startswith(("import ", "from "))]
    assert imports and all(line.split()[1].split(".")[0] == "scaling" for line in imports)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    text = "".join(o.get("text", "") for c in code for o in c.outputs
                   if o.get("output_type") == "stream")
    assert "28 points, metric: 1 - accuracy" in text
    assert "Q =  50 text tokens: V* = 13.5" in text
    assert "marked optimum: N = 7.87B, V = 13.5 (the planner's: N = 7.87B, V = 13.5)" in text
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 4  # frontier, isoflop, heatmap, fit
    assert not any(o.get("output_type") == "error" for c in code for o in c.outputs)
