"""Regenerate (or check) the Python code of the record format in ``proto/``.

    python proto/generate.py          # write src/llm_cost_tracker/queue/kafka_record_v1_pb2.py(i)
    python proto/generate.py --check  # exit 1 if the committed code does not match the .proto

Needs ``grpcio-tools`` (``pip install grpcio-tools``; only for this script, not at run time). The
check compares the compiled descriptor (FileDescriptorProto), not the text, so a different protoc
version that emits the same schema is not reported as stale.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ["llm_cost_tracker/queue/kafka_record_v1.proto"]
HEADER = "# ruff: noqa\n"  # generated code: not ours to lint


def _protoc(args: list[str]) -> None:
    from grpc_tools import protoc

    if protoc.main(["protoc", f"-I{ROOT / 'proto'}", *args]) != 0:
        raise SystemExit(f"protoc failed: {args}")


def generate() -> list[Path]:
    """Write the generated modules under src/; returns their paths."""
    _protoc([f"--python_out={ROOT / 'src'}", f"--pyi_out={ROOT / 'src'}",
             *(str(ROOT / "proto" / p) for p in PROTOS)])
    written = []
    for proto in PROTOS:
        for suffix in ("_pb2.py", "_pb2.pyi"):
            path = ROOT / "src" / proto.replace(".proto", suffix)
            text = path.read_text()
            if not text.startswith(HEADER):
                path.write_text(HEADER + text)
            written.append(path)
    return written


def _strip_json_names(message: object) -> None:
    for field in message.field:  # type: ignore[attr-defined]
        field.ClearField("json_name")
    for nested in message.nested_type:  # type: ignore[attr-defined]
        _strip_json_names(nested)


def stale() -> list[str]:
    """The .proto files whose committed generated module describes a different schema."""
    from google.protobuf import descriptor_pb2

    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        _protoc([f"--descriptor_set_out={out}", *(str(ROOT / "proto" / p) for p in PROTOS)])
        compiled = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    sys.path.insert(0, str(ROOT / "src"))
    for expected in compiled.file:
        module = importlib.import_module(expected.name.replace(".proto", "_pb2").replace("/", "."))
        committed = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
        for message in expected.message_type:  # protoc's python output leaves json_name out
            _strip_json_names(message)
        if committed != expected:
            problems.append(f"{expected.name}: generated code is stale; run python proto/generate.py")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the generated code is current")
    if parser.parse_args().check:
        problems = stale()
        print("\n".join(problems) or "generated code is current")
        return 1 if problems else 0
    for path in generate():
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
