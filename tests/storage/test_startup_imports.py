"""What opening a fresh store costs in imports: pandas is never loaded (~0.35 s of CPU per service start)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys, tempfile
from llm_cost_tracker.config import Settings
from llm_cost_tracker.storage import client as store
from llm_cost_tracker.storage.migrate import migrate
c = store.connect(Settings(data_dir=tempfile.mkdtemp()))
migrate(c)
c.insert("schema_migrations", [[9999, "probe", "x"]], column_names=["version", "name", "checksum"])
print("pandas" in sys.modules)
"""


def test_a_fresh_store_and_its_row_inserts_do_not_import_pandas() -> None:
    """clickhouse-connect imports pandas on the first row insert unless told it is absent (storage/client.py);
    the migrations' bookkeeping is such an insert."""
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stdout + out.stderr
