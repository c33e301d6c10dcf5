"""Photo check-ins: a photo is checked and fingerprinted before it is stored, near copies are
refused across everyone, and a reviewer's approval credits the act once as screenshot evidence."""

from __future__ import annotations

import io
import random

import pytest
import sqlalchemy as sa
from PIL import Image, ImageDraw, ImageOps

from carbonbook.db.schema import checkins
from carbonbook.ledger import Ledger
from carbonbook.methodology.registry import get
from carbonbook.personal.checkins import (
    MAX_BYTES,
    AlreadyReviewedError,
    Checkins,
    DecompressionBombError,
    DuplicatePhotoError,
    NotACheckinBehaviourError,
    PhotoError,
    PhotoTooLargeError,
)

ALI = get("ali-88@2023")


def photo(seed: int, size: tuple[int, int] = (640, 480), fmt: str = "JPEG") -> bytes:
    """A distinct picture per seed: random shapes on a random background."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        box = (x, y, x + rng.randrange(40, 300), y + rng.randrange(40, 300))
        draw.rectangle(box, fill=tuple(rng.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def stored(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(checkins)).scalar_one()


def grams(engine: sa.Engine, person: str) -> int:
    account = Ledger(engine).find_account(f"person:{person}", "CO2E_MG")
    return 0 if account is None else Ledger(engine).balance(account.id).balance


def test_an_approved_check_in_is_credited_once_as_screenshot_evidence(engine):
    service = Checkins(engine)
    checkin = service.submit("chen", "metro_checkin", photo(1), ALI)
    assert [c.id for c in service.queue()] == [checkin.id]
    report = service.approve(checkin.id, "reviewer-1", ALI)
    assert report["accepted"] == 1
    assert grams(engine, "chen") == 200_000  # 200 g a trip, screenshot weight 1
    assert service.queue() == []
    again = service.approve(checkin.id, "reviewer-2", ALI)  # finishing an interrupted approval
    assert again["duplicates"] == 1
    assert grams(engine, "chen") == 200_000


def test_a_rejected_check_in_earns_nothing_and_keeps_its_reason(engine):
    service = Checkins(engine)
    checkin = service.submit("chen", "lights_off", photo(2), ALI)
    rejected = service.reject(checkin.id, "reviewer-1", "the lights are on")
    assert (rejected.status, rejected.reason) == ("rejected", "the lights are on")
    with pytest.raises(AlreadyReviewedError):
        service.approve(checkin.id, "reviewer-2", ALI)
    assert grams(engine, "chen") == 0


def test_a_resized_or_re_encoded_copy_is_a_duplicate_even_from_someone_else(engine):
    service = Checkins(engine)
    original = photo(3)
    service.submit("chen", "metro_checkin", original, ALI)
    smaller = io.BytesIO()
    Image.open(io.BytesIO(original)).resize((320, 240)).save(smaller, "PNG")
    with pytest.raises(DuplicatePhotoError):
        service.submit("xu", "metro_checkin", smaller.getvalue(), ALI)
    service.submit("xu", "metro_checkin", photo(4), ALI)  # a different photo is fine
    assert stored(engine) == 2


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"%PDF-1.4 not a photo", PhotoError),
        (photo(5)[:2000], PhotoError),  # truncated
        (photo(6, fmt="GIF"), PhotoError),  # an image, not an accepted format
        (b"\xff" * (MAX_BYTES + 1), PhotoTooLargeError),
    ],
)
def test_what_is_not_an_acceptable_photo_is_refused_and_nothing_is_stored(engine, data, error):
    with pytest.raises(error):
        Checkins(engine).submit("chen", "metro_checkin", data, ALI)
    assert stored(engine) == 0


def test_a_decompression_bomb_is_refused_before_it_is_decoded(engine):
    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(bomb, "PNG")  # 400 M pixels in a few tens of kB
    assert len(bomb.getvalue()) < 200_000
    with pytest.raises(DecompressionBombError):
        Checkins(engine).submit("chen", "metro_checkin", bomb.getvalue(), ALI)
    assert stored(engine) == 0


def test_a_behaviour_the_methodology_does_not_know_is_refused(engine):
    with pytest.raises(NotACheckinBehaviourError):
        Checkins(engine).submit("chen", "teleport", photo(7), ALI)


def _with_gps(data: bytes) -> bytes:
    """The photo as a phone writes it: EXIF with the camera, a time and the GPS position."""
    image = Image.open(io.BytesIO(data))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0132] = "2026:11:20 08:00:00"  # DateTime
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (39.0, 54.0, 27.0)  # latitude: a home in Beijing
    gps[3], gps[4] = "E", (116.0, 23.0, 50.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def test_exif_and_gps_are_stripped_before_the_photo_is_stored(engine):
    upload = _with_gps(photo(41))
    assert Image.open(io.BytesIO(upload)).getexif().get_ifd(0x8825)  # the upload has GPS
    service = Checkins(engine)
    checkin = service.submit("chen", "metro_checkin", upload, ALI)
    media_type, kept, _ = service.photo(checkin.id)
    assert media_type == "image/jpeg"
    assert b"Exif" not in kept
    assert b"PhoneMaker" not in kept
    again = Image.open(io.BytesIO(kept))
    assert len(again.getexif()) == 0
    assert "exif" not in again.info
    assert again.size == (640, 480)


def test_an_approval_past_the_daily_cap_says_it_credited_nothing(engine):
    # metro_checkin: four trips a day. The fifth approved the same day cannot be credited; the
    # reviewer is told why and the check-in does not read `approved`.
    service = Checkins(engine)
    done = [service.submit("chen", "metro_checkin", photo(100 + n), ALI) for n in range(5)]
    for checkin in done[:4]:
        assert service.approve(checkin.id, "reviewer-1", ALI)["status"] == "approved"
    fifth = service.approve(done[4].id, "reviewer-1", ALI)
    assert fifth["status"] == "not_credited"
    assert fifth["code"] == "DAILY_CAP"
    assert fifth["message_zh"]
    assert fifth["message"]
    assert grams(engine, "chen") == 4 * 200_000
    mine = {c.id: c for c in service.of("chen")}
    assert mine[done[4].id].status == "not_credited"
    assert (mine[done[4].id].reason or "").startswith("DAILY_CAP")


# -- copies a pHash misses: rotated, mirrored, cropped, inside a screenshot (issue 16) ----------


def scene(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A plate-like picture: forty small shapes on one shared background. Different seeds are
    different photos of similar scenes (same background, same kinds of shapes)."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, (200, 210, 220))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y, r = rng.randrange(size[0]), rng.randrange(size[1]), rng.randrange(10, 60)
        colour = tuple(rng.randrange(256) for _ in range(3))
        kind = rng.randrange(3)
        if kind == 0:
            draw.ellipse((x, y, x + r, y + r * 0.7), fill=colour)
        elif kind == 1:
            draw.rectangle((x, y, x + r, y + r // 2), fill=colour)
        else:
            corner = (x + rng.randrange(-r, r), y + r)
            draw.polygon([(x, y), (x + r, y + rng.randrange(-r, r)), corner], fill=colour)
    return image


def jpeg_of(image: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def screenshot(image: Image.Image) -> Image.Image:
    """The photo as a phone screenshot shows it: scaled into a tall screen between a status
    bar and a navigation bar, with text around it."""
    screen = Image.new("RGB", (1080, 2340), (24, 24, 24))
    draw = ImageDraw.Draw(screen)
    draw.rectangle((0, 0, 1080, 120), fill=(250, 250, 250))
    draw.text((40, 40), "12:30  5G  87%", fill=(0, 0, 0))
    draw.rectangle((0, 2200, 1080, 2340), fill=(240, 240, 240))
    draw.text((40, 700), "My lunch today - clean plate!", fill=(230, 230, 230))
    w, h = image.size
    screen.paste(image.resize((1000, 1000 * h // w)), (40, 800))
    return screen


def crop(image: Image.Image, fraction: float, *, corner: bool = False) -> Image.Image:
    """Cut `fraction` of the width and of the height: from one corner, or evenly around."""
    w, h = image.size
    dx, dy = int(w * fraction), int(h * fraction)
    if corner:
        return image.crop((dx, dy, w, h))
    return image.crop((dx // 2, dy // 2, w - dx // 2, h - dy // 2))


COPIES = {
    "rotated 3 degrees": lambda im: im.rotate(3, expand=True, fillcolor=(255, 255, 255)),
    "rotated 90 degrees": lambda im: im.rotate(90, expand=True),
    "rotated 37 degrees": lambda im: im.rotate(37, expand=True),
    "mirrored": ImageOps.mirror,
    "cropped 20 %": lambda im: crop(im, 0.2),
    "cropped 25 % from a corner": lambda im: crop(im, 0.25, corner=True),
    "in a screenshot": screenshot,
    "mirrored, rotated 2 degrees and cropped 10 %": lambda im: crop(
        ImageOps.mirror(im).rotate(2, expand=True), 0.1
    ),
}


def test_a_rotated_mirrored_cropped_or_screenshotted_copy_is_a_duplicate(engine):
    service = Checkins(engine)
    original = scene(7)
    first = service.submit("chen", "metro_checkin", jpeg_of(original), ALI)
    for name, make in COPIES.items():
        with pytest.raises(DuplicatePhotoError, match=str(first.id)):
            service.submit("xu", "metro_checkin", jpeg_of(make(original), 80), ALI)
        assert stored(engine) == 1, name


def test_the_original_after_its_screenshot_is_a_duplicate_too(engine):
    service = Checkins(engine)
    original = scene(8)
    service.submit("chen", "metro_checkin", jpeg_of(screenshot(original)), ALI)
    with pytest.raises(DuplicatePhotoError):
        service.submit("xu", "metro_checkin", jpeg_of(crop(original, 0.2)), ALI)


def test_different_photos_of_similar_scenes_are_not_duplicates(sqlite_url):
    # Twenty-four plates on the same table and a few flat test photos: none is refused (with
    # a transform alone, chance inliers had matched one pair in a hundred such scenes).
    engine = sa.create_engine(sqlite_url)
    service = Checkins(engine)
    for seed in range(20, 44):
        service.submit("chen", "metro_checkin", jpeg_of(scene(seed)), ALI)
    for seed in range(40, 46):
        service.submit("xu", "metro_checkin", photo(seed), ALI)
    assert stored(engine) == 30
    engine.dispose()
