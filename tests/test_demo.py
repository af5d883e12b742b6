"""`make demo` runs after a base install: its photo comes from matplotlib (a base dependency), not an extra."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from neuralcodec import demo


def test_demo_photo_needs_no_extra(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "skimage", None)  # the test extra is not needed
    photo = demo._sample_photo()
    assert photo.dtype == np.uint8 and photo.shape == (600, 512, 3) and photo.std() > 20  # a real picture
