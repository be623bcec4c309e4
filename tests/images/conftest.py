"""The image tier: the three images run as their pods would (tests/images/pods.py).

Skipped, with one line, where Docker cannot be used or the images are not built; with
``VIDEOJOBS_REQUIRE_IMAGES=1`` (what .ci/run sets, after .ci/images/build.sh) that is a failure
instead. The Kubernetes API the containers talk to is the project's emulator (kmock with the
strict rules, tests/mockapi): until the real-Kubernetes tier has a container runtime, it is the
API server these tests can start on 127.0.0.1 in a second.
"""

from __future__ import annotations

import os

import pytest

from tests.images.pods import IMAGES, REQUIRE_ENV, unavailable
from tests.mockapi.conftest import api, emulator, kmock_options  # noqa: F401  (fixtures)


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """The images under test, by name; skips (or fails, when required) without them."""
    reason = unavailable()
    if reason is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"image tier required ({REQUIRE_ENV}=1) but {reason}", pytrace=False)
        pytest.skip(f"image tier: {reason}")
    return IMAGES
