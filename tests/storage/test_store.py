"""Schema migrations and the Arrow row path against real chDB."""

from decimal import Decimal

from llm_cost_tracker.sinks.clickhouse import ClickHouseSink, is_retriable
from llm_cost_tracker.storage.migrate import bundled_migrations, migrate
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.types import SpanRecord, TokenUsage


def make_record(i: int, cost: int | None) -> SpanRecord:
    return span_record(
        trace_id=f"{i:032x}", span_id=f"{i:016x}", start_time_ns=1_730_000_000_123_456_789 + i, duration_ns=42,
        status_code=2, resource_attributes={"service.name": "svc"}, attributes={"gen_ai.request.model": "m", "k": "é"},
        tenant="acme", provider="openai", request_model="m", response_model="m-1", usage=TokenUsage(10, 5, 3, 1, 2),
        cost_pusd=cost,
    )


def test_migrations_apply_once(store) -> None:
    """Migrating an up-to-date store applies nothing and the recorded versions match the bundled ones."""
    assert migrate(store) == []
    versions = {r[0] for r in store.query("SELECT version FROM schema_migrations").result_rows}
    assert versions == {m.version for m in bundled_migrations()}


def test_rows_round_trip_exactly(store) -> None:
    """Costs, nanosecond timestamps, maps and NULL costs survive the insert exactly."""
    sink = ClickHouseSink(store)
    big = 9_000_000_000_000_000_000  # 9 million USD in pico-USD, near the int64 limit
    sink.write([make_record(1, 1), make_record(2, None), make_record(3, big), make_record(4, 123_456_789)])
    rows = store.query(
        "SELECT span_id, toString(cost_usd), toUnixTimestamp64Nano(timestamp), attributes['k'], tenant, "
        "input_tokens, reasoning_tokens, status_code, pricing_status FROM llm_spans ORDER BY span_id"
    ).result_rows
    assert [r[1] for r in rows] == ["0.000000000001", None, "9000000", "0.000123456789"]
    assert rows[0][2] == 1_730_000_000_123_456_790
    assert rows[0][3:] == ("é", "acme", 10, 2, 2, "priced")
    total = store.query("SELECT sum(cost_usd) FROM llm_spans").result_rows[0][0]
    assert total == Decimal("9000000.000123456790")


def test_error_classification() -> None:
    """Type mismatches are permanent; connection trouble and unknown errors are retried."""
    assert not is_retriable(Exception("Code: 53. DB::Exception: Type mismatch"))
    assert not is_retriable(ValueError("cannot encode"))
    assert is_retriable(ConnectionError("refused"))
    assert is_retriable(Exception("Code: 241. Memory limit exceeded"))


def test_a_process_that_stores_rows_does_not_import_pandas(tmp_path) -> None:
    """Migrating a new store inserts rows through clickhouse-connect, whose insert imports pandas to check
    for a DataFrame unless told pandas is absent (0.6-0.8 s of CPU and ~70 MB in every service process)."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from llm_cost_tracker.config import Settings\n"
        "from llm_cost_tracker.storage import client\n"
        "from llm_cost_tracker.storage.migrate import migrate\n"
        f"settings = Settings(data_dir={str(tmp_path)!r})\n"
        "store = client.connect(settings)\n"
        "migrate(store, settings=settings)\n"
        "rows = store.query('SELECT count() FROM schema_migrations').result_rows\n"
        "print(rows[0][0], 'pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    migrations, pandas_loaded = out.stdout.split()
    assert int(migrations) == len(bundled_migrations())
    assert pandas_loaded == "False"
