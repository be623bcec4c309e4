"""Paths and keys a tenant gives: normalised, refused when they climb, defaults per resource."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from videojobs.models.spec import (
    ConfigMapKeyRef,
    PvcStorage,
    S3Storage,
    clean_relative_path,
    default_destination,
)
from videojobs.naming import make_stem


@pytest.mark.parametrize(
    ("given", "clean"),
    [("a/b", "a/b"), ("a//b/./c/", "a/b/c"), ("", ""), (".", ""), ("a..b/c", "a..b/c")],
)
def test_relative_paths_are_normalised(given: str, clean: str) -> None:
    assert clean_relative_path(given) == clean


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("/etc", "relative"),
        ("a/../../b", "'..'"),
        ("..", "'..'"),
        ("a/..", "'..'"),
        ("a\x00b", "NUL"),
        ("a\nb", "control"),
        ("a\x7fb", "control"),
    ],
)
def test_climbing_paths_are_refused(given: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        clean_relative_path(given)


def test_pvc_path_with_nul_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        PvcStorage.model_validate({"claimName": "c", "path": "clips\x00/x"})
    assert info.value.errors()[0]["loc"] == ("path",)
    assert "NUL" in info.value.errors()[0]["msg"]


def test_destinations_default_to_namespace_and_name() -> None:
    pvc = PvcStorage.model_validate({"claimName": "c"})
    assert pvc.directory("team-a", "talk") == "team-a/talk"
    assert PvcStorage.model_validate({"claimName": "c", "path": ""}).directory("a", "b") == ""
    s3 = S3Storage.model_validate({"bucket": "clips"})
    assert s3.key_prefix("team-a", "talk") == "team-a/talk"
    assert S3Storage.model_validate({"bucket": "clips", "prefix": "x/"}).key_prefix("a", "b") == "x"
    assert default_destination("a", "b") != default_destination("a", "c")


@pytest.mark.parametrize("key", ["/etc/passwd", "../x", "a/b", ".", "..", "a\x00"])
def test_config_map_keys_are_never_paths(key: str) -> None:
    with pytest.raises(ValidationError):
        ConfigMapKeyRef.model_validate({"name": "n", "key": key})


@pytest.mark.parametrize("title", ["../../etc/passwd", "/abs/path", "a\x00b"])
def test_stems_never_hold_a_path(title: str) -> None:
    stem = make_stem("../{title}", {"title": title}, "clip")
    assert "/" not in stem and ".." not in stem and "\x00" not in stem
