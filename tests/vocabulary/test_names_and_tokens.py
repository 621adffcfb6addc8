"""The shared vocabulary on its own: names are matched whole, page tokens are decoded
without trusting anything, etags have one format, messages quote a short prefix."""

from __future__ import annotations

import base64
import json

import pytest

from services.runtime.errors import InvalidArgument
from services.vocabulary import etags, names, page_tokens
from services.vocabulary.quoting import quoted

JOB_ID = "0123456789abcdef0123456789abcdef"


def _token(raw: str | bytes) -> str:
    data = raw.encode() if isinstance(raw, str) else raw
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _violation(error: pytest.ExceptionInfo[InvalidArgument]) -> tuple[str, str]:
    [violation] = error.value.violations
    return violation.field, violation.description


@pytest.mark.parametrize(
    "parse, valid, invalid",
    [
        (names.parse_project, "projects/acme", "projects/acme\n"),
        (names.parse_provider, "providers/lookalike", "providers/lookalike\n"),
        (names.parse_token, "tokens/0123456789abcdef", "tokens/0123456789abcdef\n"),
        (names.parse_job, f"projects/acme/generationJobs/{JOB_ID}", f"projects/acme/generationJobs/{JOB_ID}\n"),
    ],
)
def test_a_name_with_a_trailing_newline_is_refused_and_the_exact_name_accepted(parse, valid, invalid):
    assert parse(valid, field="name")
    with pytest.raises(InvalidArgument) as raised:
        parse(invalid, field="name")
    field, description = _violation(raised)
    assert field == "name" and "must have the form" in description


def test_a_name_error_states_the_form_without_repeating_the_value():
    with pytest.raises(InvalidArgument) as raised:
        names.parse_project("projects/" + "X" * 7000, field="parent")
    assert "XXXX" not in raised.value.message and len(raised.value.message) < 200


def test_a_child_name_must_be_in_the_given_project():
    name = f"projects/acme/stagedTexts/{JOB_ID}"
    assert names.parse_staged_text(name, field="names[0]", project="acme").id == JOB_ID
    with pytest.raises(InvalidArgument):
        names.parse_staged_text(name, field="names[0]", project="other")


def test_page_tokens_round_trip():
    position = {"seq": 42, "query": "abc123"}
    assert page_tokens.decode(page_tokens.encode(position), fields={"seq": int, "query": str}) == position
    assert page_tokens.decode("", fields={"seq": int}) is None


@pytest.mark.parametrize(
    "token",
    [
        _token('{"after": 5}'),
        _token('{"after": {"x": 1}}'),
        _token('{"after": [true, 1]}'),
        _token('{"after": "a\\u0000b"}'),
        _token('{"after": true}'),
        _token('{"after": "x", "extra": 1}'),
        _token("[" * 50_000),
        _token("[" * 100 + "]" * 100),
        _token('"just a string"'),
        _token(b"\xff\xfe"),
        "%%%",
        "A" * 10_000,
    ],
    ids=[
        "int",
        "object",
        "array",
        "nul",
        "bool",
        "extra key",
        "deep nesting",
        "nested arrays",
        "string",
        "not utf-8",
        "not base64",
        "too long",
    ],
)
def test_a_malformed_page_token_is_invalid_argument_naming_page_token(token):
    with pytest.raises(InvalidArgument) as raised:
        page_tokens.decode(token, fields={"after": str})
    assert _violation(raised) == ("page_token", "is not a page token returned by this API")


def test_a_bool_is_not_taken_for_an_integer_position():
    with pytest.raises(InvalidArgument):
        page_tokens.decode(_token(json.dumps({"seq": True})), fields={"seq": int})
    assert page_tokens.decode(_token(json.dumps({"seq": 1})), fields={"seq": int}) == {"seq": 1}


def test_page_sizes_default_and_cap_aip_158():
    assert page_tokens.page_size(0) == page_tokens.DEFAULT_PAGE_SIZE
    assert page_tokens.page_size(10) == 10
    assert page_tokens.page_size(10**9) == page_tokens.MAX_PAGE_SIZE
    with pytest.raises(InvalidArgument):
        page_tokens.page_size(-1)


def test_one_etag_format_parsed_strictly():
    assert etags.etag(3) == "v3"
    assert etags.expected_version("v3", field="etag") == 3
    assert etags.expected_version("", field="etag") is None
    for malformed in ("3", "v3\n", "v", "v-1", "w3"):
        with pytest.raises(InvalidArgument):
            etags.expected_version(malformed, field="provider.etag")


def test_quoting_keeps_a_short_prefix_of_long_values():
    assert quoted("short") == "'short'"
    long = quoted("y" * 7000)
    assert len(long) < 80 and long.startswith("'yyyy") and "7000 characters" in long
