"""The committed notebook carries no outputs (CI regenerates them by executing it): nothing stale."""
import json
import sys

nb = json.load(open(sys.argv[1]))
stale = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
if stale:
    sys.exit(f"{sys.argv[1]}: code cells {stale} carry outputs; clear them before committing "
             "(jupyter nbconvert --clear-output --inplace notebooks/gpt2.ipynb)")
print(f"{sys.argv[1]}: {len(nb['cells'])} cells, no outputs")
