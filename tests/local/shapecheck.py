"""Checks a response body, member by member, against an output shape of botocore's own service
model (the JSON that ships in the botocore wheel), as strictly as aws-sdk-rust reads it.

botocore's parser is lenient (it prints `"cpu": 0` where the model says string), so parsing with
boto3 proves little; this walks the raw JSON instead and reports every member whose name, type,
enum value or presence disagrees with the model, and every `null`.
"""

from __future__ import annotations

import base64
import binascii
import math

# Enum values ECS sends that the model's enum lacks. `PRE_PRODUCTION_TRAFFIC_SHIFT` is a lifecycle
# stage of blue/green, linear and canary deployments (the model's own docstring of
# `ServiceDeployment.lifecycleStage` describes it, and `DeploymentLifecycleHookStage` has it), but
# botocore 1.44.8 and aws-sdk-ecs 1.157 leave it out of `ServiceDeploymentLifecycleStage`;
# aws-sdk-rust keeps such a value as `Unknown`, botocore as the string.
KNOWN_MISSING_ENUM_VALUES = {
    "ServiceDeploymentLifecycleStage": {"PRE_PRODUCTION_TRAFFIC_SHIFT"},
}

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


def check(value, shape, path="$"):
    """Returns a list of human-readable problems (empty when `value` conforms to `shape`)."""
    problems: list[str] = []
    _walk(value, shape, path, problems)
    return problems


def _walk(value, shape, path, problems):
    if value is None:
        problems.append(f"{path}: null (omit the member instead; {shape.name} is {shape.type_name})")
        return
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected object ({shape.name}), got {_json_type(value)}")
            return
        for name in shape.required_members:
            if name not in value:
                problems.append(f"{path}: required member `{name}` of {shape.name} is missing")
        for name, member_value in value.items():
            member = shape.members.get(name)
            if member is None:
                problems.append(f"{path}: `{name}` is not a member of {shape.name}")
                continue
            _walk(member_value, member, f"{path}.{name}", problems)
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected array ({shape.name}), got {_json_type(value)}")
            return
        for index, item in enumerate(value):
            _walk(item, shape.member, f"{path}[{index}]", problems)
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected object map ({shape.name}), got {_json_type(value)}")
            return
        for key, item in value.items():
            _walk(key, shape.key, f"{path}<key {key!r}>", problems)
            _walk(item, shape.value, f"{path}[{key!r}]", problems)
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: expected string ({shape.name}), got {_json_type(value)} {value!r}")
            return
        if shape.enum and value not in shape.enum and value not in KNOWN_MISSING_ENUM_VALUES.get(shape.name, ()):
            problems.append(f"{path}: {value!r} is not a value of enum {shape.name} {list(shape.enum)}")
    elif kind in ("integer", "long"):
        low, high = INT32 if kind == "integer" else INT64
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: expected {kind} ({shape.name}), got {_json_type(value)} {value!r}")
        elif not low <= value <= high:
            problems.append(f"{path}: {value} does not fit a {kind}")
        elif shape.name == "Timestamp" and not 1e12 <= value <= 4.1e12:
            # CloudWatch Logs times are `long` epoch milliseconds, never seconds.
            problems.append(f"{path}: {value} is not plausible epoch milliseconds")
    elif kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{path}: expected number ({shape.name}), got {_json_type(value)}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected boolean ({shape.name}), got {_json_type(value)} {value!r}")
    elif kind == "timestamp":
        _check_timestamp(value, shape, path, problems)
    elif kind == "blob":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError, ValueError):
            problems.append(f"{path}: expected base64 blob ({shape.name})")
    else:
        problems.append(f"{path}: shape {shape.name} has a type this checker does not know: {kind}")


def _check_timestamp(value, shape, path, problems):
    # awsJson 1.1 without timestampFormat: epoch seconds as a JSON number (fractions allowed).
    form = shape.serialization.get("timestampFormat", "unixTimestamp")
    if form != "unixTimestamp":
        problems.append(f"{path}: timestampFormat {form} is not checked here")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(f"{path}: expected epoch-seconds number ({shape.name}), got {_json_type(value)} {value!r}")
        return
    # Between 2001 and 2100: catches milliseconds sent where seconds are modelled.
    if not math.isfinite(value) or not 1e9 <= value <= 4.1e9:
        problems.append(f"{path}: {value} is not plausible epoch seconds")


def _json_type(value):
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
