"""The Arrow rows hold every record exactly: attributes (keys, values, order) and money (to the pico-USD)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from llm_cost_tracker.storage.rows import pico_to_decimal_array, records_to_arrow
from llm_cost_tracker.testing import span_record

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
attribute_dicts = st.dictionaries(text, text, max_size=12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(attribute_dicts, attribute_dicts), max_size=20))
def test_map_columns_hold_every_attribute_in_order(pairs: list[tuple[dict[str, str], dict[str, str]]]) -> None:
    records = [span_record(attributes=attrs, resource_attributes=resource) for attrs, resource in pairs]
    # the spans of one resource share its dict object: a run of shared dicts as well as distinct ones
    resources = [resource for _, resource in pairs[:3]] or [{}]
    records += [span_record(attributes=attrs, resource_attributes=resources[i % len(resources)])
                for i, (attrs, _) in enumerate(pairs * 4)]
    table = records_to_arrow(records)
    assert table.num_rows == len(records)
    for column, field in (("attributes", "attributes"), ("resource_attributes", "resource_attributes")):
        stored = table.column(column).to_pylist()
        assert stored == [list(getattr(r, field).items()) for r in records]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), max_size=50))
def test_costs_are_exact_decimals_of_the_pico_usd(values: list[int | None]) -> None:
    """Decimal(38, 12) from integer pico-USD: null stays null, every other value exact, negatives included."""
    stored = pico_to_decimal_array(values).to_pylist()
    assert stored == [None if v is None else Decimal(v).scaleb(-12) for v in values]
