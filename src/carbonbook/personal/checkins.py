"""Photo check-ins (拍照打卡, 光盘打卡): a person uploads a photo of a green act, a reviewer
approves or rejects it, and an approved check-in is credited like any event, as `screenshot`
evidence (the methodology weighs it; a self check-in is worth less than operator data).

A photo is checked before anything is stored: size, that it decodes as JPEG, PNG or WebP,
and that its pixel count is no decompression bomb. It is compared with every stored check-in,
everyone's: its perceptual hash (pHash) catches a re-sent, resized or re-encoded copy, and its
local features (`photo_match`: ORB, a RANSAC similarity and a pixel check) a copy rotated by
any angle, mirrored, cropped by up to a quarter or shown inside a screenshot; so one plate
cannot be checked in twice or by two people.

What is stored is the photo re-encoded from its pixels (orientation applied), never the
upload: EXIF, GPS, XMP and text chunks never reach the database or a reviewer. An approval
whose act cannot be credited (the day's cap reached) ends `not_credited` with the reason, not
`approved` with nothing credited.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import imagehash
import sqlalchemy as sa
from PIL import Image, ImageOps, UnidentifiedImageError

from carbonbook.db.schema import checkins
from carbonbook.errors import ConflictError, DomainError, NotFoundError, ValidationFailedError
from carbonbook.methodology.registry import get as get_methodology
from carbonbook.personal.photo_match import (
    Fingerprint,
    fingerprint,
    fingerprints_of_upload,
    same_photo,
)
from carbonbook.personal.service import Personal

if TYPE_CHECKING:
    from carbonbook.methodology.model import Methodology

MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a phone photo is ~12 MP; anything past this is refused unopened
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
NEAR_DUPLICATE_BITS = 6  # pHash Hamming distance at or below which two photos are one
PLATFORM = "checkin"  # the identity space of check-in events: (checkin, checkin-ID)
PENDING, APPROVED, REJECTED, NOT_CREDITED = 0, 1, 2, 3
STATUS_NAMES = {
    PENDING: "pending",
    APPROVED: "approved",
    REJECTED: "rejected",
    NOT_CREDITED: "not_credited",  # approved, but the act could not be credited (e.g. the cap)
}
JPEG_QUALITY = 92  # the stored copy: re-encoded without metadata, visually the same


NOT_CREDITED_ZH = {
    "DAILY_CAP": "审核已通过，但当日该行为已达每日上限，未计入减排量",
}


class PhotoError(ValidationFailedError):
    code = "NOT_AN_IMAGE"


class PhotoTooLargeError(DomainError):
    code = "PHOTO_TOO_LARGE"
    http_status = 413


class DecompressionBombError(ValidationFailedError):
    code = "IMAGE_BOMB"


class DuplicatePhotoError(ConflictError):
    code = "DUPLICATE_PHOTO"


class UnknownCheckinError(NotFoundError):
    code = "UNKNOWN_CHECKIN"


class AlreadyReviewedError(ConflictError):
    code = "ALREADY_REVIEWED"


class NotACheckinBehaviourError(ValidationFailedError):
    code = "UNKNOWN_BEHAVIOUR"


@dataclass(frozen=True, slots=True)
class Photo:
    media_type: str
    width: int
    height: int
    phash: str
    sha256: str  # of the upload: the same file sent again is refused by its key
    clean: bytes  # what is stored: the pixels re-encoded, no EXIF/GPS/XMP/text chunks
    prints: tuple[Fingerprint, Fingerprint]  # the photo's features and its mirror image's


@dataclass(frozen=True, slots=True)
class Checkin:
    id: int
    person: str
    behaviour: str
    methodology: str
    status: str
    submitted_at: int
    reason: str | None

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "person": self.person,
            "behaviour": self.behaviour,
            "methodology": self.methodology,
            "status": self.status,
            "reason": self.reason,
        }


def inspect_photo(data: bytes) -> Photo:
    """Check an upload and fingerprint it, or refuse it with the reason; stores nothing."""
    if len(data) > MAX_BYTES:
        raise PhotoTooLargeError(
            f"the photo is {len(data):,} bytes; the limit is {MAX_BYTES:,}",
            f"照片有 {len(data):,} 字节，上限为 {MAX_BYTES:,}",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                media = FORMATS.get(probe.format or "")
                width, height = probe.size
                if width * height > MAX_PIXELS:
                    raise _bomb(width, height)
                probe.verify()  # structure and checksums, without decoding every pixel
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # now decode: a truncated file fails here
                upright = ImageOps.exif_transpose(image)  # the orientation tag goes with EXIF
                phash = str(imagehash.phash(upright))
                clean = _without_metadata(upright, probe.format or "")
                prints = fingerprints_of_upload(upright)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _bomb(0, 0) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise PhotoError(
            "the file is not a photo carbonbook can read (JPEG, PNG or WebP)",
            "文件不是可读取的照片（JPEG、PNG 或 WebP）",
        ) from None
    if media is None:
        raise PhotoError(
            "only JPEG, PNG and WebP photos are accepted", "只接受 JPEG、PNG 和 WebP 照片"
        )
    return Photo(
        media,
        upright.width,
        upright.height,
        phash,
        hashlib.sha256(data).hexdigest(),
        clean,
        prints,
    )


def _without_metadata(image: Image.Image, fmt: str) -> bytes:
    """The pixels alone, re-encoded: a fresh image carries no EXIF, GPS, XMP, ICC or text."""
    alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    mode = "RGBA" if alpha and fmt != "JPEG" else "RGB"
    bare = Image.new(mode, image.size)
    bare.paste(image.convert(mode))
    out = io.BytesIO()
    if fmt == "JPEG":
        bare.save(out, "JPEG", quality=JPEG_QUALITY)
    elif fmt == "WEBP":
        bare.save(out, "WEBP", quality=JPEG_QUALITY)
    else:
        bare.save(out, "PNG", optimize=False)
    return out.getvalue()


def _bomb(width: int, height: int) -> DecompressionBombError:
    size = f" ({width} x {height})" if width else ""
    return DecompressionBombError(
        f"the image{size} has more than {MAX_PIXELS:,} pixels: refused as a decompression bomb",
        f"图像{size}超过 {MAX_PIXELS:,} 像素，按解压炸弹拒收",
    )


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _now_us() -> int:
    return int(datetime.now(UTC).timestamp() * 1_000_000)


class Checkins:
    """Uploads, the reviewer queue, and crediting approved check-ins."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def submit(self, person: str, behaviour: str, data: bytes, methodology: Methodology) -> Checkin:
        if behaviour not in methodology.behaviours:
            raise NotACheckinBehaviourError(
                f"{methodology.ref} has no behaviour {behaviour!r}",
                f"{methodology.ref} 没有行为 {behaviour!r}",
            )
        photo = inspect_photo(data)
        now = _now_us()
        with self.engine.begin() as conn:
            self._refuse_duplicates(conn, photo)
            new_id = conn.execute(
                checkins.insert()
                .values(
                    person=person,
                    behaviour=behaviour,
                    methodology=methodology.ref,
                    phash=photo.phash,
                    sha256=photo.sha256,
                    media_type=photo.media_type,
                    width=photo.width,
                    height=photo.height,
                    photo=photo.clean,
                    features=photo.prints[0].to_bytes(),
                    status=PENDING,
                    submitted_at=now,
                )
                .returning(checkins.c.id)
            ).scalar_one()
        return Checkin(new_id, person, behaviour, methodology.ref, "pending", now, None)

    @staticmethod
    def _refuse_duplicates(conn: sa.Connection, photo: Photo) -> None:
        # A linear scan: the hash costs nothing, the features ~10 ms a stored photo. An index
        # (a BK-tree on the hashes, a vocabulary of descriptors) replaces it at scale.
        c = checkins.c
        for other_id, other, features in conn.execute(sa.select(c.id, c.phash, c.features)):
            if hamming(photo.phash, other) <= NEAR_DUPLICATE_BITS or same_photo(
                photo.prints, _stored_print(conn, other_id, features)
            ):
                raise DuplicatePhotoError(
                    f"this photo matches check-in {other_id} already submitted",
                    f"这张照片与已提交的打卡 {other_id} 重复",
                )

    def queue(self, limit: int = 50) -> list[Checkin]:
        """Pending check-ins, oldest first: the reviewer's queue."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(checkins).where(checkins.c.status == PENDING).order_by(checkins.c.id)
                .limit(limit)
            )  # fmt: skip
            return [_checkin(row) for row in rows]

    def of(self, person: str) -> list[Checkin]:
        with self.engine.connect() as conn:
            mine = sa.select(checkins).where(checkins.c.person == person)
            rows = conn.execute(mine.order_by(checkins.c.id.desc()))
            return [_checkin(row) for row in rows]

    def photo(self, checkin_id: int) -> tuple[str, bytes, str]:
        """(media type, bytes, person) of a check-in's photo."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(checkins.c.media_type, checkins.c.photo, checkins.c.person).where(
                    checkins.c.id == checkin_id
                )
            ).first()
        if row is None:
            raise UnknownCheckinError(f"no check-in {checkin_id}", f"没有打卡 {checkin_id}")
        return row.media_type, bytes(row.photo), row.person

    def approve(self, checkin_id: int, reviewer: str, methodology: Methodology) -> dict[str, Any]:
        """Approve and credit: the event `(checkin, checkin-ID)` goes through ingestion.

        Approving an approved check-in again re-offers its event, which ingestion credits at
        most once: the way to finish an approval whose crediting was interrupted. When the act
        cannot be credited (the person's day is at the behaviour's cap, or any other refusal
        of the ingestion), the check-in ends `not_credited` with the reason, and the answer
        says so: `status`, `code`, `message`, `message_zh`.
        """
        with self.engine.begin() as conn:
            row = self._claim(conn, checkin_id, reviewer, APPROVED, None)
        if row.methodology != methodology.ref:
            methodology = get_methodology(row.methodology)
        unit = methodology.behaviours[row.behaviour].unit
        submitted = datetime.fromtimestamp(row.submitted_at / 1_000_000, UTC)
        event = {
            "platform": PLATFORM,
            "event_id": f"checkin-{checkin_id}",
            "person": row.person,
            "behaviour": row.behaviour,
            "quantity": "1",
            "unit": unit,
            "occurred_at": submitted.isoformat(),
            "evidence": "screenshot",
        }
        report = Personal(self.engine).ingest_lines([json.dumps(event)], methodology)
        document = report.to_document()
        if report.accepted or report.duplicates or not report.rejected:
            return {**document, "status": STATUS_NAMES[APPROVED]}
        refusal = report.rejected[0]
        code, message = str(refusal["code"]), str(refusal["message"])
        message_zh = NOT_CREDITED_ZH.get(code, f"审核已通过，但未能计入减排量：{code}")
        with self.engine.begin() as conn:
            conn.execute(
                checkins.update()
                .where(checkins.c.id == checkin_id, checkins.c.status == APPROVED)
                .values(status=NOT_CREDITED, reason=f"{code}: {message}"[:500])
            )
        return {
            **document,
            "status": STATUS_NAMES[NOT_CREDITED],
            "code": code,
            "message": f"approved but not credited: {message}",
            "message_zh": message_zh,
        }

    def reject(self, checkin_id: int, reviewer: str, reason: str) -> Checkin:
        if not reason.strip():
            raise ValidationFailedError("a rejection needs a reason", "驳回须说明理由")
        with self.engine.begin() as conn:
            row = self._claim(conn, checkin_id, reviewer, REJECTED, reason.strip()[:500])
        return replace(_checkin(row), status="rejected", reason=reason.strip()[:500])

    @staticmethod
    def _claim(
        conn: sa.Connection, checkin_id: int, reviewer: str, status: int, reason: str | None
    ) -> Any:
        """Mark a pending check-in reviewed; exactly one reviewer wins a race."""
        row = conn.execute(sa.select(checkins).where(checkins.c.id == checkin_id)).first()
        if row is None:
            raise UnknownCheckinError(f"no check-in {checkin_id}", f"没有打卡 {checkin_id}")
        if status == APPROVED and row.status == APPROVED:
            return row
        done = conn.execute(
            checkins.update()
            .where(checkins.c.id == checkin_id, checkins.c.status == PENDING)
            .values(status=status, reviewer=reviewer, reviewed_at=_now_us(), reason=reason)
        ).rowcount
        if done != 1:
            raise AlreadyReviewedError(
                f"check-in {checkin_id} was already reviewed", f"打卡 {checkin_id} 已审核"
            )
        return row


def _stored_print(conn: sa.Connection, checkin_id: int, features: bytes | None) -> Fingerprint:
    """A stored check-in's features; one stored before they were kept gets them now, once."""
    if features is not None:
        return Fingerprint.from_bytes(bytes(features))
    data = conn.execute(sa.select(checkins.c.photo).where(checkins.c.id == checkin_id)).scalar_one()
    with Image.open(io.BytesIO(bytes(data))) as image:
        found = fingerprint(ImageOps.exif_transpose(image))
    conn.execute(
        checkins.update().where(checkins.c.id == checkin_id).values(features=found.to_bytes())
    )
    return found


def _checkin(row: Any) -> Checkin:
    return Checkin(
        id=int(row.id),
        person=row.person,
        behaviour=row.behaviour,
        methodology=row.methodology,
        status=STATUS_NAMES[int(row.status)],
        submitted_at=int(row.submitted_at),
        reason=row.reason,
    )
