"""The sandbox's decisions on the engine's parse output and on request settings (no engine needed)."""

from __future__ import annotations

import pytest

from llm_cost_tracker.sql_http import Policy, SqlError
from llm_cost_tracker.sql_http._errors import from_engine
from llm_cost_tracker.sql_http._sandbox import (
    check_ast,
    check_tables,
    client_settings,
    parse_ast,
    split_format,
)

AST_MERGE = """SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 3)
   ExpressionList (children 1)
    Function lower (children 1)
     ExpressionList (children 1)
      Identifier tenant
   TablesInSelectQuery (children 2)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      Function merge (alias m) (children 1)
       ExpressionList (children 2)
        Literal 'default'
        Literal 'llm_spans'
    TablesInSelectQueryElement (children 2)
     TableExpression (children 1)
      TableIdentifier system.processes (alias p)
     TableJoin
"""
POLICY = Policy("acme", 30.0, 1000, 10_000, 10**9, 1)


def test_ast_tells_table_functions_from_functions() -> None:
    statement = parse_ast(AST_MERGE)
    assert statement.kind == "SelectWithUnionQuery" and not statement.into_outfile
    assert statement.table_functions == ("merge",) and statement.functions == ("lower",)
    assert statement.tables == ("system.processes",)
    with pytest.raises(SqlError, match="merge"):
        check_ast(statement)


def test_into_outfile_and_statement_kinds() -> None:
    outfile = parse_ast("SelectWithUnionQuery (children 2)\n ExpressionList (children 1)\n  SelectQuery (children 1)\n"
                        "   ExpressionList (children 1)\n    Literal UInt64_1\n Literal 'x'\n")
    assert outfile.into_outfile
    with pytest.raises(SqlError) as caught:
        check_ast(outfile)
    assert caught.value.code == 164 and caught.value.status == 403
    with pytest.raises(SqlError, match="KillQuery is not allowed"):
        check_ast(parse_ast("KillQueryQuery Literal_UInt64_1 ASYNC (children 1)\n Literal UInt64_1\n"))
    check_ast(parse_ast("ShowTables\n"))


def test_tenant_tables() -> None:
    check_tables("TABLE id: 7, alias: __table2, table_name: default.llm_spans\n"
                 "TABLE id: 8, table_name: system.one\n", "default", "acme")
    with pytest.raises(SqlError) as caught:
        check_tables("TABLE id: 7, alias: __table2, table_name: default.reprice_runs\n", "default", "acme")
    assert caught.value.code == 497


def test_format_clause_is_split_from_formatted_text() -> None:
    assert split_format("SELECT 1\nFORMAT JSON") == ("SELECT 1", "JSON")
    assert split_format("SELECT 'FORMAT JSON'") == ("SELECT 'FORMAT JSON'", None)


def test_request_settings() -> None:
    assert client_settings({"query": "x", "param_a": "1", "session_id": "s", "readonly": "1",
                            "output_format_json_quote_decimals": "1", "max_result_rows": "10"}, POLICY) == {
        "output_format_json_quote_decimals": "1", "max_result_rows": "10"}
    for bad in ({"max_result_rows": "1001"}, {"max_result_rows": "0"}, {"readonly": "0"}, {"use_query_cache": "1"},
                {"additional_table_filters": "{}"}, {"allow_experimental_analyzer": "0"}):
        with pytest.raises(SqlError) as caught:
            client_settings(bad, POLICY)
        assert caught.value.code == 164, bad


def test_row_filter_quotes_the_tenant() -> None:
    text = Policy("o'brien\\", 1.0, 1, 1, 1, 1).filters("default")
    assert "'tenant = \\'o\\\\\\'brien\\\\\\\\\\''" in text and "'default.llm_spans'" in text


def test_engine_errors_keep_code_name_and_message() -> None:
    error = from_engine(RuntimeError("Code: 60. DB::Exception: Unknown table expression identifier 'x'. "
                                     "(UNKNOWN_TABLE) (version 26.9.2.1)"))
    assert (error.code, error.name, error.status) == (60, "UNKNOWN_TABLE", 404)
    assert error.body() == b"Code: 60. DB::Exception: Unknown table expression identifier 'x'. (UNKNOWN_TABLE)\n"
