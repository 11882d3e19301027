"""Write the wire contract's field inventory, the released snapshot the compatibility test reads.

Usage: python tools/descriptor_snapshot.py > protos/gatekeeper/api/v1/released.json

Run it when a version is released; between releases the test fails on any removed or
renamed field, message, enum value, service or method, and on a changed field number or
type.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FileDescriptor


def _enum(descriptor: EnumDescriptor) -> dict[str, int]:
    return {value.name: value.number for value in descriptor.values}


def _message(descriptor: Descriptor) -> dict[str, Any]:
    return {
        "fields": {
            field.name: {
                "number": field.number,
                "type": field.type,
                "label": "repeated" if field.is_repeated else "single",
                "type_name": (
                    field.message_type.full_name
                    if field.message_type
                    else field.enum_type.full_name
                    if field.enum_type
                    else ""
                ),
            }
            for field in descriptor.fields
        },
        "nested": {d.name: _message(d) for d in descriptor.nested_types},
        "enums": {e.name: _enum(e) for e in descriptor.enum_types},
    }


def inventory(file: FileDescriptor) -> dict[str, Any]:
    """Every message, enum and service of the file, with their fields and numbers."""
    return {
        "package": file.package,
        "messages": {name: _message(d) for name, d in file.message_types_by_name.items()},
        "enums": {name: _enum(d) for name, d in file.enum_types_by_name.items()},
        "services": {
            name: {
                m.name: [m.input_type.full_name, m.output_type.full_name] for m in service.methods
            }
            for name, service in file.services_by_name.items()
        },
    }


if __name__ == "__main__":
    from gatekeeper.api.v1 import gatekeeper_pb2

    json.dump(inventory(gatekeeper_pb2.DESCRIPTOR), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
